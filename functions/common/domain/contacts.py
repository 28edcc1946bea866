"""Contacts: turning CSV records into validated contacts, one verdict per row.

The seed format is `Name, email, phone, street, city, state, zip` without a header;
a header row naming an email column is also understood.
"""

from __future__ import annotations

import csv
import functools
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

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


SEED_COLUMNS = ("name", "email", "phone", "street", "city", "state", "zip")


MAX_NAME_LENGTH = 200


MAX_FIELD_LENGTH = 1_000


OVERLONG_REASON = "line longer than the longest allowed (MaxLineBytes): skipped to the next line"


# About 100 bytes each: the in-file duplicate check stays under ~20 MB however long the file is.
MAX_REMEMBERED_EMAILS = 200_000


# Header labels as exports name them, compared lower-cased with runs of spaces, `_` and `-` as one space
# (docs/csv-files.md has the table): "E-mail 1 - Value" (Google Contacts) is "e mail 1 value".
_EMAIL_HEADERS = {"email", "e mail", "email address", "e mail address", "mail", "e mail 1 value",
                  "email 1 value"}


_NAME_HEADERS = {"name", "full name", "fullname", "display name", "contact", "contact name"}
_FIRST_NAME_HEADERS = {"first name", "firstname", "given name"}
_LAST_NAME_HEADERS = {"last name", "lastname", "family name", "surname"}
_LABEL_SEPARATORS = re.compile(r"[\s_-]+")


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*")


_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Contact:
    email: str
    name: str
    row: int


@dataclass(frozen=True, slots=True)
class InvalidRow:
    row: int
    reason: str
    fields: tuple[str, ...]


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


@dataclass(frozen=True)
class Layout:
    """Where a file's email and name are (the name may be first + last), and how many columns a row may have."""

    name_columns: tuple[int, ...]
    email_column: int
    min_columns: int
    max_columns: int
    header: tuple[str, ...] = ()  # the header's labels, when the file has one
    delimiter: str = ","

    def describe(self) -> str:
        """Which columns were used (and the delimiter, when not a comma), as `status` shows it."""
        name = DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))
        delimiter = "" if self.delimiter == "," else f"delimiter {name}; "
        if not self.header:
            return delimiter + "no header: the seed's columns (name, email, phone, street, city, state, zip)"
        names = " + ".join(repr(self.header[i]) for i in self.name_columns if i < len(self.header))
        return f"{delimiter}email from {self.header[self.email_column]!r}, name from {names or 'no column'}"

    def to_json(self) -> dict[str, Any]:
        return {"name_columns": list(self.name_columns), "email_column": self.email_column,
                "min_columns": self.min_columns, "max_columns": self.max_columns, "header": list(self.header),
                "delimiter": self.delimiter}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        # Checkpoints written before first + last names held one `name_column`.
        names = data["name_columns"] if "name_columns" in data else [data["name_column"]]
        return cls(name_columns=tuple(int(i) for i in names), email_column=int(data["email_column"]),
                   min_columns=int(data["min_columns"]), max_columns=int(data["max_columns"]),
                   header=tuple(data.get("header", ())), delimiter=str(data.get("delimiter", ",")))


SEED_LAYOUT = Layout(name_columns=(0,), email_column=1, min_columns=2, max_columns=len(SEED_COLUMNS))


def header_label(field: str) -> str:
    return _LABEL_SEPARATORS.sub(" ", field.strip().lower()).strip()


# The delimiters a file may use, in order of preference when two read a sample equally well.
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_LINES = 50


def sniff_delimiter(sample: list[str]) -> str:
    """The delimiter that splits the sample's records into the same number of fields (2 or more) most
    consistently; a comma when none does (the rows are then judged one by one)."""
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        counts = _field_counts(sample, delimiter)
        if not counts:
            continue
        modal, frequency = Counter(counts).most_common(1)[0]
        score = (frequency / len(counts), modal)
        if modal >= 2 and score[0] > best_score[0]:
            best, best_score = delimiter, score
    return best


def _field_counts(sample: list[str], delimiter: str) -> list[int]:
    """How many fields each non-blank record of the sample has, read with this delimiter."""
    reader = csv.reader(sample, delimiter=delimiter, skipinitialspace=True, strict=False)
    counts: list[int] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return counts
        except csv.Error:  # e.g. a field over the csv module's size limit: judged later, row by row
            continue
        if fields and any(field.strip() for field in fields):
            counts.append(len(fields))


def _excel_separator(line: str) -> str | None:
    """Excel's `sep=;` first line: the file's delimiter, said outright."""
    text = line.strip().lstrip("\ufeff")
    return text[4] if len(text) == 5 and text[:4].lower() == "sep=" else None


def _header_layout(fields: list[str], delimiter: str) -> Layout | None:
    labels = [header_label(field) for field in fields]

    def first(names: set[str]) -> int | None:
        return next((i for i, label in enumerate(labels) if label in names), None)

    email_column = first(_EMAIL_HEADERS)
    if email_column is None:
        return None
    full, given, family = first(_NAME_HEADERS), first(_FIRST_NAME_HEADERS), first(_LAST_NAME_HEADERS)
    if full is not None:
        name_columns: tuple[int, ...] = (full,)
    elif given is not None or family is not None:
        name_columns = tuple(i for i in (given, family) if i is not None)
    else:
        name_columns = (0 if email_column else 1,) if len(fields) > 1 else ()
    needed = max((email_column, *name_columns)) + 1
    return Layout(name_columns=name_columns, email_column=email_column, min_columns=needed, max_columns=len(fields),
                  header=tuple(field.strip() for field in fields), delimiter=delimiter)


def _judge(fields: list[str], row: int, layout: Layout) -> Contact | InvalidRow:
    if len(fields) < layout.min_columns:
        return InvalidRow(row, f"too few columns ({len(fields)}, expected at least {layout.min_columns})",
                          tuple(fields))
    if len(fields) > layout.max_columns:
        return InvalidRow(row, f"too many columns ({len(fields)}, expected at most {layout.max_columns})",
                          tuple(fields))
    if max(map(len, fields)) > MAX_FIELD_LENGTH:
        return InvalidRow(row, f"a field is longer than {MAX_FIELD_LENGTH} characters", tuple(fields))
    columns = layout.name_columns
    name = clean_name(fields[columns[0]] if len(columns) == 1 else " ".join(fields[i] for i in columns))
    if len(name) > MAX_NAME_LENGTH:
        return InvalidRow(row, f"name longer than {MAX_NAME_LENGTH} characters", tuple(fields))
    try:
        email = normalise_email(fields[layout.email_column])
    except InvalidEmail as error:
        return InvalidRow(row, str(error), tuple(fields))
    return Contact(email=email, name=name, row=row)


class ContactReader:
    """One verdict per CSV record; blank lines are not records.

    `lines` is any iterable of text lines (a streamed S3 body decoded as UTF-8), so the file is
    never held whole in memory. A row's number is its record's line in the file: `first_line` is
    how many lines came before `lines` (an import that goes on from a checkpoint). `layout` is
    found from the first record (a header, or the seed's columns) unless given.

    Emails already seen come back as DuplicateRow; the first `remember` emails are remembered,
    which keeps memory flat on huge files (the ledger still catches any later duplicate).
    """

    def __init__(self, lines: Iterable[str], layout: Layout | None = None, first_line: int = 0,
                 remember: int = MAX_REMEMBERED_EMAILS):
        self.layout = layout
        self._lines = lines
        self._first_line = first_line
        self._remember = remember

    def _delimited(self) -> tuple[Iterable[str], str, int]:
        """The lines to read, their delimiter, and how many lines came before them."""
        if self.layout is not None:
            return self._lines, self.layout.delimiter, self._first_line
        # The file's first segment: tell its delimiter from its first lines.
        rest = iter(self._lines)
        sample = list(itertools.islice(rest, SNIFF_LINES))
        said = _excel_separator(sample[0]) if sample else None
        first_line = self._first_line
        if said is not None:
            sample, first_line = sample[1:], first_line + 1  # not a record
        return itertools.chain(sample, rest), said or sniff_delimiter(sample), first_line

    def __iter__(self) -> Iterator[RowVerdict]:
        lines, delimiter, first_line = self._delimited()
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True, strict=False)
        seen: set[str] = set()
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a field over the csv module's size limit
                yield InvalidRow(first_line + reader.line_num, f"unreadable CSV record: {error}", ())
                continue
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line is not a record
            row = first_line + reader.line_num
            if fields == [OVERLONG_LINE]:
                yield InvalidRow(row, OVERLONG_REASON, ())
                continue
            if self.layout is None:
                self.layout = _header_layout(fields, delimiter)
                if self.layout is not None:
                    continue
                self.layout = replace(SEED_LAYOUT, delimiter=delimiter)
            verdict = _judge(fields, row, self.layout)
            if isinstance(verdict, Contact):
                if verdict.email in seen:
                    yield DuplicateRow(row, verdict.email)
                    continue
                if len(seen) < self._remember:
                    seen.add(verdict.email)
            yield verdict


def read_contacts(lines: Iterable[str]) -> Iterator[RowVerdict]:
    """The verdicts of a whole file (see ContactReader)."""
    return iter(ContactReader(lines))
