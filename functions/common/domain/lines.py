"""A byte stream as UTF-8 text lines that knows how far it has read, so that an import can stop
after any record and a later invocation can go on from that byte (an S3 ranged GET)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

_BOM = b"\xef\xbb\xbf"


class PositionedLines:
    """Iterates the lines of `stream` (which starts at byte `start` of the file), decoded as
    UTF-8. `position` is the file offset just after the last line yielded and `count` how many
    lines were yielded. Lines keep their endings, as the csv module wants (`newline=""`).

    Lines end at LF (and so at CRLF); a line with bare CRs inside (classic Mac files) is split
    at them too. A UnicodeDecodeError propagates from the line that cannot be decoded.
    """

    def __init__(self, stream: BinaryIO, start: int = 0):
        self._stream = stream
        self.position = start
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        first = self.position == 0
        for raw in self._stream:
            if first:
                first = False
                if raw.startswith(_BOM):
                    self.position += len(_BOM)
                    raw = raw[len(_BOM):]
            if raw.find(b"\r", 0, len(raw) - 2) >= 0:
                yield from self._split_at_bare_cr(raw)
                continue
            text = raw.decode("utf-8")
            self.position += len(raw)
            self.count += 1
            yield text

    def _split_at_bare_cr(self, raw: bytes) -> Iterator[str]:
        start = 0
        while start < len(raw):
            end = raw.find(b"\r", start)
            end = len(raw) if end < 0 else end + 1
            if raw[end:end + 1] == b"\n":  # CRLF stays one ending
                end += 1
            piece = raw[start:end]
            text = piece.decode("utf-8")
            self.position += len(piece)
            self.count += 1
            start = end
            yield text
