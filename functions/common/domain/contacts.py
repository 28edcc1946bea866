"""Contacts: turning CSV records into validated contacts, one verdict per row.

The seed format is `Name, email, phone, street, city, state, zip` without a header; exports with a header are
understood too, and which column is which is decided before the first row (common.domain.columns). A record
broken by a stray quote costs that record, not the rows after it.
"""

from __future__ import annotations

import csv
import functools
import itertools
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from common.domain.columns import ColumnMapping, Layout, Unsure, find_layout
from common.domain.encodings import UNDECODABLE_LINE, read_undecodable_line
from common.domain.lines import OVERLONG_LINE

# Nearly every address is plain: dot-separated atoms of letters (of any script, in NFC), digits,
# `_ + -` before the @; ASCII letter-digit-hyphen labels and a letters-only top-level label after
# it. email-validator accepts every such address (unless its domain is a special-use name, checked
# below) and normalises it to itself, so lower-casing is the whole of the work; anything else goes
# to email-validator. tests/unit/test_contacts.py checks that on generated addresses.
_PLAIN_EMAIL = re.compile(
    r"[\w+-]{1,64}(?:\.[\w+-]{1,64})*@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


_LETTERS = frozenset({"Ll", "Lu", "Lo"})


_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


_SPECIAL_USE_LABELS = max((name.count(".") + 1 for name in _SPECIAL_USE), default=0)


MAX_PLAIN_EMAIL_LENGTH = 254


MAX_NAME_LENGTH = 200


MAX_FIELD_LENGTH = 1_000


OVERLONG_REASON = "line longer than the longest allowed (MaxLineBytes): skipped to the next line"
BROKEN_RECORD_REASON = ("unreadable CSV record (a quote that never closes, or a field too long for any row): "
                        "the rows after it are read on")


# About 100 bytes each: the in-file duplicate check stays under ~20 MB however long the file is.
MAX_REMEMBERED_EMAILS = 200_000


# A record whose quoted field runs on is checked against the lines it swallowed: the first of the next lines that
# reads as a row on its own (a stray quote, then rows) ends it.
LOOKAHEAD_LINES = 20
# Google Contacts writes several addresses in one cell: "a@example.com ::: b@example.com".
_SEVERAL_ADDRESSES = re.compile(r"\s*:::\s*")
# `"Ann Lee" <ann@example.com>` and `Ann Lee <ann@example.com>`.
_DISPLAY_NAME = re.compile(r'^\s*"?([^"<>]*?)"?\s*<([^<>\s]+)>\s*$')


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*")


_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Contact:
    email: str
    name: str
    row: int
    other_addresses: int = 0  # more addresses in its cell (Google's ` ::: `), counted, not emailed


@dataclass(frozen=True, slots=True)
class InvalidRow:
    row: int  # the first line of its record
    reason: str
    fields: tuple[str, ...]
    raw: str = ""  # the record's own text, when it could not be split into fields


@dataclass(frozen=True, slots=True)
class DuplicateRow:
    row: int
    email: str


RowVerdict = Contact | InvalidRow | DuplicateRow


class InvalidEmail(ValueError):
    pass


def normalise_email(raw: str) -> str:
    """Trim, drop a `mailto:` prefix, check syntax (no DNS), lower-case: the ledger's key."""
    value = raw.strip()
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    if not value:
        raise InvalidEmail("missing email")
    if (plain := _plain_email(value)) is not None:
        return plain
    return _validated(value)


@functools.lru_cache(maxsize=4096)
def _validated(value: str) -> str:
    """email-validator's verdict through its public API (a pure function of the address: safe to remember)."""
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(f"invalid email: {error}") from None
    return checked.normalized.lower()


def _plain_email(value: str) -> str | None:
    """The normalised address when it is plain (see _PLAIN_EMAIL), else None."""
    if len(value) > MAX_PLAIN_EMAIL_LENGTH or not _PLAIN_EMAIL.fullmatch(value):
        return None
    if not value.isascii() and (
            len(value.encode()) > MAX_PLAIN_EMAIL_LENGTH or not unicodedata.is_normalized("NFC", value)
            or any(not c.isascii() and unicodedata.category(c) not in _LETTERS for c in value)):
        return None  # digits of other scripts, marks, non-NFC text: email-validator's to judge
    normalised = value.lower()
    at = normalised.rindex("@")
    domain = normalised[at + 1:]
    if at > 64 or "--" in domain:
        return None  # IDNA-looking labels are email-validator's to judge
    labels = domain.split(".")
    if any(".".join(labels[-n:]) in _SPECIAL_USE for n in range(1, min(len(labels), _SPECIAL_USE_LABELS) + 1)):
        return None  # so are special-use names (.test, .local...)
    return normalised


def clean_name(raw: str) -> str:
    """One line of text fit for a greeting: control characters (CR, LF, NUL...) become spaces; format
    characters (bidi overrides, zero-width) and links (`scheme://...`, `www....`) are removed, so an upload
    cannot put a link or reversed text in front of a recipient."""
    if raw.isprintable() and "  " not in raw and not _LINK.search(raw):
        return raw.strip()  # nothing to remove, replace or collapse (the usual case)
    visible = "".join(character for character in raw if unicodedata.category(character) != "Cf")
    return _SPACES.sub(" ", _LINK.sub(" ", _CONTROL_CHARS.sub(" ", visible))).strip()


# The delimiters a file may use, in order of preference when two read a sample equally well.
DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 50


def sniff_delimiter(sample: list[str]) -> str:
    """The delimiter that splits the sample's records into the same number of fields (2 or more) most
    consistently; a comma when none does (the rows are then judged one by one)."""
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        counts = [len(fields) for fields in _sample_records(sample, delimiter)]
        if not counts:
            continue
        modal, frequency = Counter(counts).most_common(1)[0]
        score = (frequency / len(counts), modal)
        if modal >= 2 and score[0] > best_score[0]:
            best, best_score = delimiter, score
    return best


def _sample_records(sample: list[str], delimiter: str) -> list[list[str]]:
    """The sample's non-blank records, read with this delimiter as one text (one that cannot be read is left out)."""
    reader = csv.reader(sample, delimiter=delimiter, skipinitialspace=True)
    records: list[list[str]] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return records
        except csv.Error:  # e.g. a field over the csv module's size limit: judged later, row by row
            continue
        if fields and any(field.strip() for field in fields):
            records.append(fields)


def _layout_sample(sample: list[str], delimiter: str) -> tuple[list[int], list[list[str]]]:
    """The sample's records to find its columns with, and the line each is on: each line read on its own, so that
    a stray quote cannot swallow the lines after it (a line with a quote left open is left out; records that span
    lines are read whole only if no line reads alone). Lines standing for an over-long or undecodable one are left
    out too."""
    starts, records = [], []
    for number, line in enumerate(sample, start=1):
        fields = _one_line(line, delimiter)
        if fields and any(cell.strip() for cell in fields) and fields[0][:2] != "\x00\x1f":
            starts.append(number)
            records.append(fields)
    if not records and any(line.strip() for line in sample):  # every line leaves a quote open: records span lines
        records = [fields for fields in _sample_records(sample, delimiter) if fields[0][:2] != "\x00\x1f"]
        starts = []  # (which line each starts on is not told: a header after a preamble is said as record N)
    return starts, records


def _excel_separator(line: str) -> str | None:
    """Excel's `sep=;` first line: the file's delimiter, said outright."""
    text = line.strip().lstrip("\ufeff")
    return text[4] if len(text) == 5 and text[:4].lower() == "sep=" else None


@dataclass(frozen=True, slots=True)
class Address:
    email: str  # normalised
    name: str = ""  # the name it was written with (`"Ann Lee" <ann@example.com>`)
    others: int = 0  # further addresses in the same cell, not emailed


def read_address(cell: str) -> Address:
    """The address a cell holds, as people write them: plain, `mailto:`, `"Ann Lee" <ann@example.com>`, or
    several joined with ` ::: ` (the first is used). Raises InvalidEmail."""
    parts = _SEVERAL_ADDRESSES.split(cell.strip())
    first, name = parts[0], ""
    if "<" in first and (match := _DISPLAY_NAME.match(first)):
        name, first = clean_name(match.group(1)), match.group(2)
    return Address(normalise_email(first), name, len([p for p in parts[1:] if p.strip()]))


def is_address(cell: str) -> bool:
    try:
        read_address(cell)
        return True
    except InvalidEmail:
        return False


def _judge(fields: list[str], row: int, layout: Layout) -> Contact | InvalidRow:
    if len(fields) < layout.min_columns:
        return InvalidRow(row, f"too few columns ({len(fields)}, expected at least {layout.min_columns})",
                          tuple(fields))
    if len(fields) > layout.max_columns:
        return InvalidRow(row, f"too many columns ({len(fields)}, expected at most {layout.max_columns})",
                          tuple(fields))
    if max(map(len, fields)) > MAX_FIELD_LENGTH:
        return InvalidRow(row, f"a field is longer than {MAX_FIELD_LENGTH} characters", tuple(fields))
    columns, emails = layout.name_columns, layout.email_columns
    if len(emails) == 1:
        cell = fields[emails[0]]
    else:  # Outlook's E-mail, E-mail 2, E-mail 3; Google's E-mail 1 - Value, E-mail 2 - Value: the first filled
        cell = next((fields[i] for i in emails if i < len(fields) and fields[i].strip()), "")
    written_name, others = "", 0
    try:
        if ":::" in cell or "<" in cell:
            address = read_address(cell)
            email, written_name, others = address.email, address.name, address.others
        else:
            email = normalise_email(cell)
    except InvalidEmail as error:
        return InvalidRow(row, str(error), tuple(fields))
    if not columns:
        name = written_name
    else:
        name = clean_name(fields[columns[0]] if len(columns) == 1 else " ".join(fields[i] for i in columns))
    if len(name) > MAX_NAME_LENGTH:
        return InvalidRow(row, f"name longer than {MAX_NAME_LENGTH} characters", tuple(fields))
    return Contact(email, name, row, others)


class _Records:
    """The CSV records of `lines`, and the lines each came from (`taken`, emptied by the reader after each record).

    A quoted field may hold line breaks (Outlook's notes), so a record may span lines. A stray quote (a row
    starting `"Carl, Jr,...`) opens a field that swallows the rows after it, up to the next quote or the csv
    module's field limit. Such a record is split where a line of it reads as a row on its own (`is_row`): the
    lines before are one broken record, the rest are given back and read again.
    """

    def __init__(self, lines: Iterable[str], delimiter: str, is_row: Callable[[list[str]], bool]):
        self._source = iter(lines)
        self._pending: deque[str] = deque()  # lines given back, read again before the source
        self.taken: list[str] = []  # the lines of the record being read
        self._is_row = is_row
        self._delimiter = delimiter
        self.reader = self._new_reader()

    def _new_reader(self) -> Iterator[list[str]]:
        return csv.reader(self._feed(), delimiter=self._delimiter, skipinitialspace=True)

    def read_on(self) -> bool:
        """After the end of the lines: a reader for the lines given back at the very end, if any."""
        if not self._pending:
            return False
        self.reader = self._new_reader()
        return True

    def _feed(self) -> Iterator[str]:
        pending, append = self._pending, self.taken.append
        for text in self._source:
            while pending:
                line = pending.popleft()
                append(line)
                yield line
            append(text)
            yield text
        while pending:
            line = pending.popleft()
            append(line)
            yield line

    def own_lines(self, fields: list[str] | None) -> tuple[list[str], list[str] | None]:
        """The lines that are the record just read, and its fields, None if it is broken (the lines after a stray
        quote are given back, to be read again); empties `taken`."""
        lines = list(self.taken)
        self.taken.clear()
        # A line of it that is a row on its own: the quote before it was a stray one (a record whose quoted field
        # runs on holds no row of its own: Outlook's notes, say).
        for index in range(1, min(len(lines), LOOKAHEAD_LINES + 1)):
            alone = _one_line(lines[index], self._delimiter)
            if alone is not None and self._is_row(alone):
                self._pending.extendleft(reversed(lines[index:]))
                return lines[:index], None
        if fields is None:  # never closed, and no row in sight: the first line alone is broken
            self._pending.extendleft(reversed(lines[1:]))
            return lines[:1], None
        return lines, fields  # one record over several lines: judged whole


def _one_line(text: str, delimiter: str) -> list[str] | None:
    """A line's fields when it reads as a record on its own (no quote left open)."""
    if text.count('"') % 2:
        return None
    try:
        return next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), None)
    except csv.Error:
        return None


class ContactReader:
    """One verdict per CSV record; blank lines are not records.

    `lines` is any iterable of text lines (a streamed S3 body, decoded line by line), so the file is
    never held whole in memory. A row's number is its record's first line in the file: `first_line` is
    how many lines came before `lines` (an import that goes on from a checkpoint). `layout` is
    found from the first lines (common.domain.columns) unless given; `unsure` then says why the file is
    held instead, and no row is read.

    Emails already seen come back as DuplicateRow; the first `remember` emails are remembered,
    which keeps memory flat on huge files (the ledger still catches any later duplicate).
    """

    def __init__(self, lines: Iterable[str], layout: Layout | None = None, first_line: int = 0,
                 remember: int = MAX_REMEMBERED_EMAILS, mapping: ColumnMapping | None = None):
        self.layout = layout
        self.unsure: Unsure | None = None
        self._skip = 0  # records before the first row (a preamble, the header): in the file's first segment
        self._lines = lines
        self._first_line = first_line
        self._remember = remember
        self._mapping = mapping

    def _delimited(self) -> tuple[Iterable[str], Layout | None, int]:
        """The lines to read, their layout (None: unsure), and how many lines came before them."""
        if self.layout is not None:
            return self._lines, self.layout, self._first_line
        # The file's first segment: tell its delimiter and its columns from its first lines.
        rest = iter(self._lines)
        sample = list(itertools.islice(rest, SNIFF_LINES))
        said = _excel_separator(sample[0]) if sample else None
        first_line = self._first_line
        if said is not None:
            sample, first_line = sample[1:], first_line + 1  # not a record
        delimiter = said or sniff_delimiter(sample)
        starts, sampled = _layout_sample(sample, delimiter)
        found = find_layout(sampled, delimiter, is_address, self._mapping, [first_line + s for s in starts])
        if isinstance(found, Unsure):
            self.unsure = found
            return (), None, first_line
        self.layout = found
        self._skip = found.skip_records
        return itertools.chain(sample, rest), found, first_line

    def __iter__(self) -> Iterator[RowVerdict]:
        lines, layout, first_line = self._delimited()
        if layout is None:
            return
        skip = self._skip
        seen: set[str] = set()
        records = _Records(lines, layout.delimiter, lambda f: isinstance(_judge(f, 0, layout), Contact))
        reader, taken = records.reader, records.taken
        line = first_line + 1  # the next record's first line
        while True:
            try:
                fields: list[str] | None = next(reader)
            except StopIteration:
                if not records.read_on():
                    return
                reader = records.reader
                continue
            except csv.Error:  # a field over the module's size limit: a quote that never closed, say
                fields = None
            row = line
            if len(taken) == 1 and fields is not None:  # nearly every record: one line, read
                line += 1
                taken.clear()
            else:
                own, record = records.own_lines(fields)
                line += len(own)
                if record is None:
                    yield InvalidRow(row, BROKEN_RECORD_REASON, (), "".join(own))
                    continue
                fields = record
            if len(fields) <= 1 and (odd := self._one_field(row, fields)) is not None:
                if isinstance(odd, InvalidRow):  # a line that stands for one too long, or not text
                    yield odd
                continue  # else a blank line, not a record
            if skip:
                skip -= 1  # a preamble line, or the header
                continue
            yield self._first_time(_judge(fields, row, layout), seen)

    def _first_time(self, verdict: Contact | InvalidRow, seen: set[str]) -> RowVerdict:
        """A contact whose address the file already had is a duplicate (the first `remember` are remembered)."""
        if isinstance(verdict, Contact):
            if verdict.email in seen:
                return DuplicateRow(verdict.row, verdict.email)
            if len(seen) < self._remember:
                seen.add(verdict.email)
        return verdict

    @staticmethod
    def _one_field(row: int, fields: list[str]) -> InvalidRow | bool | None:
        """A record of one field or none: False for a blank line, the invalid row a marker stands for, or None
        for a row (a file of one column)."""
        if not fields or not fields[0].strip():
            return False
        field = fields[0]
        if field == OVERLONG_LINE:
            return InvalidRow(row, OVERLONG_REASON, ())
        if field.startswith(UNDECODABLE_LINE):
            reason, text = read_undecodable_line(field)
            return InvalidRow(row, reason, (), text)
        return None


def read_contacts(lines: Iterable[str]) -> Iterator[RowVerdict]:
    """The verdicts of a whole file (see ContactReader)."""
    return iter(ContactReader(lines))
