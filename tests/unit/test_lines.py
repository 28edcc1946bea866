"""Text lines that know their byte position: what lets an import stop anywhere and go on later."""

import io

import pytest

from common.domain.lines import PositionedLines


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


def test_a_line_that_is_not_utf8_raises_after_the_lines_before_it():
    lines = PositionedLines(io.BytesIO("ok\nJos\xe9\n".encode("latin-1")))
    iterator = iter(lines)
    assert next(iterator) == "ok\n"
    with pytest.raises(UnicodeDecodeError):
        next(iterator)
    assert lines.position == 3
