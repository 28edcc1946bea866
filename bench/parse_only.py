"""Parse-only throughput and peak memory: `python -m bench.parse_only FILE` (no AWS, no queue).

Reads the file as parse_csv reads an S3 body (a binary stream decoded as UTF-8), judges every row
and packs the contacts into messages that are then dropped, and prints one JSON line.
"""

import io
import json
import resource
import sys
import time
from pathlib import Path

from common.domain.jobs import Checkpoint, ImportState, ParseTally, Upload
from common.domain.parsing import Importer, OpenedObject


class NullJobs:
    def begin(self, upload, content_etag=""):
        return ImportState(upload=upload, checkpoint=Checkpoint())

    def finish(self, job_id, tally: ParseTally, failure_reason="", rejects_key="", segment=0, read_as="", unsure=None):
        self.tally = tally


class DroppingQueue:
    def send(self, batches):
        return sum(1 for _ in batches)


class LocalFile:
    """The file as parse_csv reads an S3 body: a buffered binary stream."""

    def __init__(self, path: Path):
        self.path = path

    def open(self, upload, offset=0, if_match=""):
        raw = self.path.open("rb")
        raw.seek(offset)
        return OpenedObject(stream=io.BufferedReader(raw, buffer_size=256 * 1024), etag="bench")

    def rejects_for(self, upload, segment=0):
        class Rejects:
            def add(self, row):
                pass

            def close(self, earlier_parts=()):
                return ""

            def close_part(self):
                return ""
        return Rejects()

    def archive(self, upload, failed):
        return ""


def main() -> None:
    path = Path(sys.argv[1])
    importer = Importer(jobs=NullJobs(), queue=DroppingQueue(), uploads=LocalFile(path), continuations=None)
    started = time.perf_counter()
    result = importer.import_upload(Upload(bucket="bench", key=path.name, etag="bench"))
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": result.tally.rows, "seconds": round(seconds, 2),
                      "rows_per_second": round(result.tally.rows / seconds),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


if __name__ == "__main__":
    main()
