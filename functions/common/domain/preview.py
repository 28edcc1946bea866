"""How a file will be read, before it is uploaded: its encoding, delimiter, header, the address and name columns and
why, and its first rows as they will be sent (the greeting itself), by the very code that reads uploads. Nothing is
sent or stored (`localcloud preview FILE`, the console's Preview)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from common.domain.columns import ColumnMapping, Unsure
from common.domain.contacts import Contact, ContactReader, DuplicateRow
from common.domain.encodings import LineDecoder, NotText
from common.domain.lines import PositionedLines, peek_encoding
from common.domain.parsing import read_as, unreadable_kind
from common.domain.welcome import render_welcome

PREVIEW_ROWS = 10


@dataclass(frozen=True)
class PreviewRow:
    line: int
    verdict: str  # "sent", "invalid", "duplicate"
    address: str = ""
    greeting: str = ""  # the email's text, as it will be sent
    reason: str = ""


@dataclass(frozen=True)
class Preview:
    read_as: str = ""
    rows: tuple[PreviewRow, ...] = ()
    unsure: Unsure | None = None  # it would be held (NEEDS_MAPPING): nothing sent
    failure: str = ""  # it would FAIL: nothing read
    notes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"read_as": self.read_as, "failure": self.failure, "notes": self.notes,
                "needs_mapping": self.unsure.to_json() if self.unsure else None,
                "rows": [vars(row) for row in self.rows]}


def preview(stream: BinaryIO, name: str, mapping: ColumnMapping | None = None, rows: int = PREVIEW_ROWS) -> Preview:
    """The first `rows` rows of the file `name` (its key or file name), judged as an upload of it would be."""
    if kind := unreadable_kind(name):
        return Preview(failure=kind)
    try:
        decision, text = peek_encoding(stream)
    except NotText as error:
        return Preview(failure=f"{error}; only CSV text files are imported")
    decoder = LineDecoder(decision)
    reader = ContactReader(PositionedLines(text, decoder=decoder), mapping=mapping)
    shown: list[PreviewRow] = []
    notes: dict[str, int] = {}
    for verdict in itertools.islice(reader, rows):
        if isinstance(verdict, Contact):
            shown.append(PreviewRow(verdict.row, "sent", verdict.email, render_welcome(verdict.name).text))
            if verdict.other_addresses:
                notes["other addresses in its cell, not emailed"] = notes.get(
                    "other addresses in its cell, not emailed", 0) + verdict.other_addresses
        elif isinstance(verdict, DuplicateRow):
            shown.append(PreviewRow(verdict.row, "duplicate", verdict.email, reason="the file had this address before"))
        else:
            shown.append(PreviewRow(verdict.row, "invalid", reason=verdict.reason))
    return Preview(read_as=read_as(decoder.decision, reader.layout), rows=tuple(shown), unsure=reader.unsure,
                   notes=notes)
