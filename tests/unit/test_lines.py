"""Text lines that know their byte position: what lets an import stop anywhere and go on later."""

import io

import pytest

from common.domain.encodings import EncodingDecision, LineDecoder
from common.domain.lines import OVERLONG_LINE, PositionedLines


def decoder(encoding: str = "utf-8", text_seen: bool = False) -> LineDecoder:
    return LineDecoder(EncodingDecision(encoding, encoding, text_seen=text_seen))


def read_from(data: bytes, start: int) -> list[str]:
    return list(PositionedLines(io.BytesIO(data[start:]), start))


@pytest.mark.parametrize("data", [
    b"a,1\nb,2\r\nc,3",
    "\ufeffname,email\nJosé,j@example.com\n".encode(),
    b"a,1\rb,2\r\rc,3\r",
    b"x\r\ny\rz\n",
])
def test_going_on_from_any_position_reads_exactly_the_rest(data):
    lines = PositionedLines(io.BytesIO(data))
    seen, positions = [], []
    for line in lines:
        seen.append(line)
        positions.append(lines.position)
    assert "".join(seen) == data.decode("utf-8-sig")
    assert positions[-1] == len(data) and lines.count == len(seen)
    for i, position in enumerate(positions):
        assert read_from(data, position) == seen[i + 1:]


def test_the_byte_order_mark_is_dropped_only_at_the_start_of_the_file():
    data = "\ufeffa\n\ufeffb\n".encode()
    assert list(PositionedLines(io.BytesIO(data))) == ["a\n", "\ufeffb\n"]


def test_a_line_that_is_not_utf8_after_utf8_text_is_one_marked_line_and_reading_goes_on():
    from common.domain.encodings import read_undecodable_line

    data = b"Zo\xc3\xab\nJos\xe9\nAnn\n"
    lines = PositionedLines(io.BytesIO(data))
    seen = list(lines)
    assert seen[0] == "Zoë\n" and seen[2] == "Ann\n" and lines.position == len(data)
    reason, text = read_undecodable_line(seen[1].rstrip("\n"))
    assert (reason, text) == ("not UTF-8 text (byte 0xE9 at position 4); the rest of the file is UTF-8", "Jos\ufffd")


def test_a_file_that_was_ascii_until_a_windows_1252_line_reads_on_in_windows_1252():
    lines = PositionedLines(io.BytesIO(b"Ann\n" * 3 + b"Jos\xe9 N\xfa\xf1ez\nBob\n"))
    assert list(lines)[3:] == ["José Núñez\n", "Bob\n"]
    assert lines.decoder.decision.encoding == "windows-1252" and lines.decoder.switched_at == 4
    assert lines.decoder.decision.why.startswith("ASCII up to line 4, then not UTF-8")


def test_a_file_of_bare_cr_lines_longer_than_the_line_limit_is_read_line_by_line():
    data = b"".join(b"Name %d, n%d@example.com\r" % (i, i) for i in range(5_000))  # ~120 KB, no LF at all
    lines = PositionedLines(io.BytesIO(data), max_line_bytes=1_024)
    seen = list(lines)
    assert len(seen) == 5_000 and seen[4_999] == "Name 4999, n4999@example.com\r" and lines.position == len(data)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
@pytest.mark.parametrize("ending", ["\n", ""])
def test_a_line_over_the_limit_is_skipped_whole_and_the_next_lines_keep_their_bytes(encoding, ending):
    # Given a line of 5,000 characters between two short ones, and a limit of 1,024 bytes
    text = "a,1\n" + "x" * 5_000 + "\nb,2" + ending
    data = text.encode(encoding)
    start = 2 if encoding == "utf-16-le" else 0
    if start:
        data = b"\xff\xfe" + data
    lines = PositionedLines(io.BytesIO(data), decoder=decoder(encoding), max_line_bytes=1_024)
    seen, positions = [], []
    for line in lines:
        seen.append(line)
        positions.append(lines.position)
    # Then it stands as one line of its own, and every byte is accounted for
    assert seen == ["a,1\n", OVERLONG_LINE + "\n", "b,2" + ending]
    assert positions[-1] == len(data) and lines.count == 3
    # and reading again after it starts exactly at the next line
    after = PositionedLines(io.BytesIO(data[positions[1]:]), positions[1], decoder(encoding), max_line_bytes=1_024)
    assert list(after) == ["b,2" + ending]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_a_file_that_never_ends_its_line_is_one_skipped_line(encoding):
    data = ("y" * 300_000).encode(encoding)
    lines = PositionedLines(io.BytesIO(data), decoder=decoder(encoding), max_line_bytes=1_024)
    assert list(lines) == [OVERLONG_LINE + "\n"] and lines.position == len(data)
