"""A byte stream as text lines that knows how far it has read, so that an import can stop after any
record and a later invocation can go on from that byte (an S3 ranged GET). Which encoding the lines are
decoded with, and why, is encodings.py's business."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from common.domain.encodings import UTF8, UTF16_BE, UTF16_LE, EncodingDecision, LineDecoder, decide_encoding

_BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 64 * 1024  # what the encoding is first told from: the file is never read whole to guess
DEFAULT_MAX_LINE_BYTES = 64 * 1024  # a contact's row is a few hundred bytes; MaxLineBytes in the template
# What stands in for a line longer than the limit (its bytes are skipped, never held): one record that the
# reader judges invalid, so that the row is counted and the rows after it keep their numbers.
OVERLONG_LINE = "\x00\x1fline-too-long\x1f\x00"
_SKIP_CHUNK = 256 * 1024


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


def peek_encoding(stream: BinaryIO) -> tuple[EncodingDecision, BinaryIO]:
    """The stream's encoding (and why), and the stream to read from instead (its first bytes put back)."""
    head = stream.read(HEAD_BYTES)
    return decide_encoding(head), io.BufferedReader(_Rejoined(head, stream), buffer_size=256 * 1024)


class PositionedLines:
    """Iterates the lines of `stream` (which starts at byte `start` of the file), decoded by `decoder`.
    `position` is the file offset just after the last line yielded and `count` how many lines were yielded.
    Lines keep their endings, as the csv module wants (`newline=""`).

    Lines end at LF (and so at CRLF) or at a bare CR (classic Mac files, Excel for Mac's CSV).

    A line longer than `max_line_bytes` is never held in memory: its bytes are skipped up to the next
    line, and OVERLONG_LINE stands in for it.
    """

    def __init__(self, stream: BinaryIO, start: int = 0, decoder: LineDecoder | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, first_line: int = 0):
        self._stream = stream
        self.position = start
        self.count = 0
        self.decoder = decoder or LineDecoder(EncodingDecision(UTF8, "UTF-8"))
        self.max_line_bytes = max_line_bytes
        self._first_line = first_line

    def __iter__(self) -> Iterator[str]:
        if self.decoder.decision.encoding in (UTF16_LE, UTF16_BE):
            yield from self._utf16()
            return
        # The common case inline (a million lines a few seconds): lines ending in LF, in the encoding in force.
        first = self.position == 0
        limit = self.max_line_bytes
        readline = self._stream.readline
        decoder = self.decoder
        encoding, watching = decoder.decision.encoding, decoder.watching
        while raw := readline(limit + 1):
            if first:
                first = False
                if raw.startswith(_BOM):
                    self.position += len(_BOM)
                    raw = raw[len(_BOM):]
            if raw.find(b"\r", 0, len(raw) - 2) >= 0:
                # A bare CR inside: lines end at CR here (classic Mac; Excel for Mac's CSV). From here on the
                # stream is split at CR, LF and CRLF alike.
                yield from self._decoded(self._split_anywhere(raw))
                return
            if len(raw) > limit and not raw.endswith(b"\n"):
                yield from self._decoded([len(raw) + self._skip_to_next_line()])
                encoding, watching = decoder.decision.encoding, decoder.watching
                continue
            self.count += 1
            self.position += len(raw)
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                text = decoder.undecodable(raw, self._first_line + self.count)
                encoding, watching = decoder.decision.encoding, decoder.watching
            else:
                if watching and not raw.isascii():
                    decoder.saw_text(self._first_line + self.count)
                    watching = False
            yield text

    def _decode(self, raw: bytes) -> str:
        decoder = self.decoder
        try:
            text = raw.decode(decoder.decision.encoding)
        except UnicodeDecodeError:
            return decoder.undecodable(raw, self._first_line + self.count)
        if decoder.watching and not raw.isascii():
            decoder.saw_text(self._first_line + self.count)
        return text

    def _decoded(self, raws: Iterable[bytes | int]) -> Iterator[str]:
        """Lines as bytes, or an over-long line as its length, counted and decoded."""
        for raw in raws:
            self.count += 1
            if isinstance(raw, int):
                self.position += raw
                yield OVERLONG_LINE + "\n"
                continue
            self.position += len(raw)
            yield self._decode(raw)

    def _split_anywhere(self, buffer: bytes) -> Iterator[bytes | int]:
        """The rest of the stream, `buffer` first, split into lines at CR, LF or CRLF."""
        limit = self.max_line_bytes
        skipped = 0  # bytes of an over-long line already dropped
        while True:
            start = 0
            while (end := _line_end(buffer, start)) >= 0:
                if buffer[end:end + 1] == b"\r" and end + 1 == len(buffer):
                    break  # an LF may follow in the next chunk
                end += 1 + (buffer[end:end + 2] == b"\r\n")
                size = end - start
                yield size + skipped if skipped or size > limit else buffer[start:end]
                skipped, start = 0, end
            buffer = buffer[start:]
            chunk = self._stream.read(_SKIP_CHUNK)
            if not chunk:
                if buffer or skipped:
                    yield len(buffer) + skipped if skipped or len(buffer) > limit else buffer
                return
            if len(buffer) > limit:  # no end in sight: drop what is held, keep counting
                skipped, buffer = skipped + len(buffer), b""
            buffer += chunk

    def _skip_to_next_line(self) -> int:
        """Reads past the rest of an over-long line, a chunk at a time; how many bytes that was."""
        skipped = 0
        while chunk := self._stream.readline(_SKIP_CHUNK):
            skipped += len(chunk)
            if chunk.endswith(b"\n"):
                break
        return skipped

    def _utf16(self) -> Iterator[str]:
        """Two bytes a code unit: decoded in chunks, split into lines at LF; each line's bytes are its
        text encoded again (exact, so a later segment can start at that byte)."""
        encoding = self.decoder.decision.encoding
        decoder = codecs.getincrementaldecoder(encoding)()
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
                yield self._counted_skip(skipping + len((lines.pop(0) + "\n").encode(encoding)))
                skipping = 0
            for line in lines:
                yield self._counted(line + "\n", encoding) if len(line) < limit else self._counted_skip(
                    len((line + "\n").encode(encoding)))
            if len(pending) > limit:  # no end in sight: skip it, keep nothing
                skipping += len(pending.encode(encoding))
                pending = ""
        pending += decoder.decode(b"", final=True)
        if skipping:
            yield self._counted_skip(skipping + len(pending.encode(encoding)))
        elif pending:
            yield self._counted(pending, encoding)

    def _counted(self, line: str, encoding: str) -> str:
        self.position += len(line.encode(encoding))
        self.count += 1
        return line

    def _counted_skip(self, size: int) -> str:
        self.position += size
        self.count += 1
        return OVERLONG_LINE + "\n"


def _line_end(buffer: bytes, start: int) -> int:
    """The index of the first CR or LF at or after `start`; -1 when there is none."""
    cr, lf = buffer.find(b"\r", start), buffer.find(b"\n", start)
    return lf if cr < 0 else cr if lf < 0 else min(cr, lf)
