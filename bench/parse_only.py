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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from common.jobs import ParseTally, Upload
from common.parsing import import_upload


class NullJobs:
    def begin(self, upload):
        return True

    def finish(self, job_id, tally: ParseTally, failure_reason="", rejects_key=""):
        self.tally = tally


class DroppingQueue:
    def send(self, batches):
        return sum(1 for _ in batches)


class NullArchive:
    def rejects_for(self, upload):
        class Rejects:
            def add(self, row):
                pass

            def close(self):
                return ""
        return Rejects()

    def archive(self, upload, failed):
        return ""


def main() -> None:
    path = Path(sys.argv[1])
    started = time.perf_counter()
    with path.open("rb") as raw:
        text = io.TextIOWrapper(io.BufferedReader(raw, buffer_size=256 * 1024), encoding="utf-8-sig", newline="")
        result = import_upload(Upload(bucket="bench", key=path.name, etag="bench"), text, NullJobs(),
                               DroppingQueue(), NullArchive())
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": result.tally.rows, "seconds": round(seconds, 2),
                      "rows_per_second": round(result.tally.rows / seconds),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


if __name__ == "__main__":
    main()
