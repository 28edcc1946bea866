"""A byte stream as text lines that knows how far it has read, so that an import can stop after any
record and a later invocation can go on from that byte (an S3 ranged GET); and the rule that tells a
file's encoding from its first bytes."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
UTF8 = "utf-8"
WINDOWS_1252 = "windows-1252"
ENCODING_NAMES = {UTF8: "UTF-8", WINDOWS_1252: "Windows-1252", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE"}
HEAD_BYTES = 64 * 1024  # what the encoding is told from: the file is never read whole to guess
DEFAULT_MAX_LINE_BYTES = 64 * 1024  # a contact's row is a few hundred bytes; MaxLineBytes in the template
# What stands in for a line longer than the limit (its bytes are skipped, never held): one record that the
# reader judges invalid, so that the row is counted and the rows after it keep their numbers.
OVERLONG_LINE = "\x00\x1fline-too-long\x1f\x00"
_SKIP_CHUNK = 256 * 1024


class NotText(ValueError):
    """No encoding reads the file as text (an image, a spreadsheet's binary format...)."""


def detect_encoding(head: bytes) -> str:
    """The encoding of a file that starts with `head`, by a documented rule (docs/csv-files.md):
    a BOM says it (UTF-8, UTF-16 LE or BE); else UTF-8 when the bytes are UTF-8; else Windows-1252
    (Excel's "CSV" on Windows; Latin-1 text reads the same) when they read as it without control
    characters other than tab, CR and LF; else the file is not text."""
    if head.startswith(_BOM):
        return UTF8
    for bom, encoding in _UTF16_BOMS.items():
        if head.startswith(bom):
            return encoding
    try:
        head.decode(UTF8)
        return UTF8
    except UnicodeDecodeError as error:
        if error.reason == "unexpected end of data" and error.start >= len(head) - 3:
            return UTF8  # `head` cut a character in two
    try:
        text = head.decode(WINDOWS_1252)
    except UnicodeDecodeError:
        raise NotText("the file is not text (no encoding reads its first bytes)") from None
    if any(character < " " and character not in "\t\r\n" for character in text):
        raise NotText("the file is not text (it holds control characters: a binary file?)")
    return WINDOWS_1252


class _Rejoined(io.RawIOBase):
    """The bytes already read from a stream (to tell its encoding), then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()


def peek_encoding(stream: BinaryIO) -> tuple[str, BinaryIO]:
    """The stream's encoding, and the stream to read from instead (its first bytes put back)."""
    head = stream.read(HEAD_BYTES)
    return detect_encoding(head), io.BufferedReader(_Rejoined(head, stream), buffer_size=256 * 1024)


class PositionedLines:
    """Iterates the lines of `stream` (which starts at byte `start` of the file), decoded with
    `encoding`. `position` is the file offset just after the last line yielded and `count` how many
    lines were yielded. Lines keep their endings, as the csv module wants (`newline=""`).

    Lines end at LF (and so at CRLF); a line with bare CRs inside (classic Mac files) is split
    at them too. A UnicodeDecodeError propagates from the line that cannot be decoded.

    A line longer than `max_line_bytes` is never held in memory: its bytes are skipped up to the next
    line, and OVERLONG_LINE stands in for it.
    """

    def __init__(self, stream: BinaryIO, start: int = 0, encoding: str = UTF8,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES):
        self._stream = stream
        self.position = start
        self.count = 0
        self.encoding = encoding
        self.max_line_bytes = max_line_bytes

    def __iter__(self) -> Iterator[str]:
        if self.encoding in _UTF16_BOMS.values():
            yield from self._utf16()
            return
        first = self.position == 0
        encoding = self.encoding
        limit = self.max_line_bytes
        while raw := self._stream.readline(limit + 1):
            if len(raw) > limit and not raw.endswith(b"\n"):
                yield self._skipped(len(raw) + self._skip_to_next_line())
                first = False
                continue
            if first:
                first = False
                if raw.startswith(_BOM):
                    self.position += len(_BOM)
                    raw = raw[len(_BOM):]
            if raw.find(b"\r", 0, len(raw) - 2) >= 0:
                yield from self._split_at_bare_cr(raw)
                continue
            text = raw.decode(encoding)
            self.position += len(raw)
            self.count += 1
            yield text

    def _skip_to_next_line(self) -> int:
        """Reads past the rest of an over-long line, a chunk at a time; how many bytes that was."""
        skipped = 0
        while chunk := self._stream.readline(_SKIP_CHUNK):
            skipped += len(chunk)
            if chunk.endswith(b"\n"):
                break
        return skipped

    def _skipped(self, size: int) -> str:
        self.position += size
        self.count += 1
        return OVERLONG_LINE + "\n"

    def _split_at_bare_cr(self, raw: bytes) -> Iterator[str]:
        start = 0
        while start < len(raw):
            end = raw.find(b"\r", start)
            end = len(raw) if end < 0 else end + 1
            if raw[end:end + 1] == b"\n":  # CRLF stays one ending
                end += 1
            piece = raw[start:end]
            text = piece.decode(self.encoding)
            self.position += len(piece)
            self.count += 1
            start = end
            yield text

    def _utf16(self) -> Iterator[str]:
        """Two bytes a code unit: decoded in chunks, split into lines at LF; each line's bytes are its
        text encoded again (exact, so a later segment can start at that byte)."""
        decoder = codecs.getincrementaldecoder(self.encoding)()
        if self.position == 0:
            bom = self._stream.read(2)
            self.position += len(bom)
        pending = ""
        skipping = 0  # bytes of an over-long line skipped so far
        limit = self.max_line_bytes // 2  # code units
        while chunk := self._stream.read(_SKIP_CHUNK):
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            if skipping and lines:  # the over-long line ends in this chunk
                yield self._skipped(skipping + len((lines.pop(0) + "\n").encode(self.encoding)))
                skipping = 0
            for line in lines:
                yield self._counted(line + "\n") if len(line) < limit else self._skipped(
                    len((line + "\n").encode(self.encoding)))
            if len(pending) > limit:  # no end in sight: skip it, keep nothing
                skipping += len(pending.encode(self.encoding))
                pending = ""
        pending += decoder.decode(b"", final=True)
        if skipping:
            yield self._skipped(skipping + len(pending.encode(self.encoding)))
        elif pending:
            yield self._counted(pending)

    def _counted(self, line: str) -> str:
        self.position += len(line.encode(self.encoding))
        self.count += 1
        return line
