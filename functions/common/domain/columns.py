"""Which column of a file is the address, and which (if any) the name: decided before the first row is sent,
from the header or from the values, and never guessed.

- The email column is found by its header label, in the languages contact exports are written in
  (`E-mail Address`, `E-Mail-Adresse`, `Adresse de messagerie`, `Correo electrónico 1 - Valor`, `Email : home`...),
  or, without such a label, by content: the one column whose values are addresses. A header may follow a
  preamble (LinkedIn writes three lines of notes first).
- The name comes only from a column labelled as a name (a full name, or first + last), or from the first
  column of the seed's headerless format (`Name, email, ...`). Otherwise there is none, and the greeting's
  fallback is used ("Hi there"); an address written as `"Ann Lee" <ann@example.com>` gives its own name.
- Where that leaves doubt (no column of addresses, two of them, addresses without a header outside the seed's
  place), the file is held unsent (`Unsure`) with the columns seen and its first rows, until a person says
  which column is which: `x-amz-meta-email-column` and `x-amz-meta-name-columns` on the upload (a header
  label or a 1-based column number; `none` for no name).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

SEED_COLUMNS = ("name", "email", "phone", "street", "city", "state", "zip")
SAMPLE_ROWS_SHOWN = 3
HEADER_SEARCH_RECORDS = 10  # a header is looked for in the first records (after a preamble)
ADDRESS_SHARE = 0.5  # of a column's filled values written as addresses, to call it the column of addresses

_NON_WORD = re.compile(r"[^0-9a-z]+")
# Label words, after lower-casing, accents dropped and punctuation made spaces ("E-Mail-Adresse" -> "e mail adresse").
_EMAIL_WORDS = {"email", "mail", "courriel", "correo", "messagerie", "emailadres", "mailadres", "emailadresse",
                "mailadresse", "emailaddress"}
_NOT_AN_ADDRESS = {"type", "typ", "tipo", "label", "etiqueta", "etiquette", "display", "angezeigter", "name", "nom",
                   "nombre", "opt", "optin", "status", "consent", "format", "verified", "permission", "bounce",
                   "bounced", "unsubscribe", "unsubscribed", "subscribed", "count", "date", "domain"}
_FULL_NAMES = {"name", "full name", "fullname", "display name", "contact", "contact name", "vollstandiger name",
               "anzeigename", "nom complet", "nombre completo", "nome completo", "naam", "volledige naam"}
_FIRST_NAMES = {"first name", "firstname", "first", "given name", "forename", "vorname", "prenom", "nombre de pila",
                "primer nombre", "voornaam", "nome proprio"}
_LAST_NAMES = {"last name", "lastname", "last", "family name", "surname", "nachname", "nom de famille", "apellido",
               "apellidos", "primer apellido", "cognome", "sobrenome", "achternaam"}
# Labels whose meaning depends on their neighbours: French "Nom" is the family name beside "Prénom" (Outlook),
# Spanish "Nombre" the given name beside "Apellido" (Google); alone, each is the whole name.
_FULL_OR_LAST = {"nom"}
_FULL_OR_FIRST = {"nombre", "nome"}


def label_key(label: str) -> str:
    """A header label compared without case, accents or punctuation: "E-Mail-Adresse" -> "e mail adresse"."""
    text = unicodedata.normalize("NFKD", label.strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", text).strip()


def is_email_label(label: str) -> bool:
    """The label names a column of addresses: an email word ("E-mail", "Courriel", "Correo"...), and nothing that
    makes it another column about email ("E-mail Type", "E-mail Display Name", "Email Opt Out")."""
    words = label_key(label).split()
    emailish = bool(set(words) & _EMAIL_WORDS) or any(
        a == "e" and b.startswith("mail") for a, b in itertools.pairwise(words))
    return emailish and not set(words) & _NOT_AN_ADDRESS


@dataclass(frozen=True)
class Layout:
    """Where a file's address and name are, and why: what every row is read with (and each later segment)."""

    email_columns: tuple[int, ...]  # the first filled one holds the row's address
    name_columns: tuple[int, ...]  # joined with a space; none: the address's own name, or the greeting's fallback
    min_columns: int
    max_columns: int
    header: tuple[str, ...] = ()  # the header's labels, when the file has one
    delimiter: str = ","
    skip_records: int = 0  # records before the first row: a preamble and the header
    found_by: str = ""  # how the columns were found, as the job records it

    @property
    def email_column(self) -> int:
        return self.email_columns[0]

    def describe(self) -> str:
        """Which columns are used and why (and the delimiter, when not a comma), as `status` shows it."""
        name = DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))
        delimiter = "" if self.delimiter == "," else f"delimiter {name}; "
        return delimiter + self.found_by

    def column_name(self, index: int) -> str:
        return repr(self.header[index]) if index < len(self.header) else f"column {index + 1}"

    def to_json(self) -> dict[str, Any]:
        return {"email_columns": list(self.email_columns), "name_columns": list(self.name_columns),
                "min_columns": self.min_columns, "max_columns": self.max_columns, "header": list(self.header),
                "delimiter": self.delimiter, "skip_records": self.skip_records, "found_by": self.found_by}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        # Checkpoints written before several email columns held one `email_column`, and before first + last
        # names one `name_column`.
        emails = data["email_columns"] if "email_columns" in data else [data["email_column"]]
        names = data["name_columns"] if "name_columns" in data else [data["name_column"]]
        header = tuple(data.get("header", ()))
        return cls(email_columns=tuple(int(i) for i in emails), name_columns=tuple(int(i) for i in names),
                   min_columns=int(data["min_columns"]), max_columns=int(data["max_columns"]), header=header,
                   delimiter=str(data.get("delimiter", ",")), skip_records=int(data.get("skip_records", 0)),
                   found_by=str(data.get("found_by", "")) or _legacy_found_by(header, emails, names))


def _legacy_found_by(header: tuple[str, ...], emails: list[int], names: list[int]) -> str:
    if not header:
        return "no header: the seed's columns (name, email, phone, street, city, state, zip)"
    named = " + ".join(repr(header[i]) for i in names if i < len(header))
    return f"email from {header[emails[0]]!r}, name from {named or 'no column'}"


SEED_LAYOUT = Layout(email_columns=(1,), name_columns=(0,), min_columns=2, max_columns=len(SEED_COLUMNS),
                     found_by="no header: the seed's columns (name, email, phone, street, city, state, zip)")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class ColumnMapping:
    """What a person said about the columns, on the upload (object metadata): a header label or a 1-based number
    each; `name_columns` comma-separated, or `none`."""

    email_column: str = ""
    name_columns: str = ""

    METADATA_EMAIL = "email-column"  # x-amz-meta-email-column
    METADATA_NAMES = "name-columns"  # x-amz-meta-name-columns

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ColumnMapping | None:
        lowered = {key.lower(): value for key, value in metadata.items()}
        email, names = lowered.get(cls.METADATA_EMAIL, "").strip(), lowered.get(cls.METADATA_NAMES, "").strip()
        return cls(email, names) if email or names else None

    def describe(self) -> str:
        said = [f"{self.METADATA_EMAIL}={self.email_column}"] if self.email_column else []
        return ", ".join(said + ([f"{self.METADATA_NAMES}={self.name_columns}"] if self.name_columns else []))


def mapping_metadata(mapping: ColumnMapping | None) -> dict[str, str]:
    """The object metadata (x-amz-meta-*) that says which column is which."""
    if mapping is None:
        return {}
    said = {ColumnMapping.METADATA_EMAIL: mapping.email_column, ColumnMapping.METADATA_NAMES: mapping.name_columns}
    return {key: value for key, value in said.items() if value}


@dataclass(frozen=True)
class Unsure:
    """The file is held unsent: why, the columns seen and the first rows, for a person to say which is which."""

    reason: str
    columns: tuple[str, ...]
    first_rows: tuple[tuple[str, ...], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "columns": list(self.columns), "first_rows": [list(r) for r in self.first_rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unsure:
        return cls(reason=str(data["reason"]), columns=tuple(data.get("columns", ())),
                   first_rows=tuple(tuple(row) for row in data.get("first_rows", ())))


class MappingError(ValueError):
    """A mapping given on the upload names a column the file does not have."""


def find_layout(records: Sequence[list[str]], delimiter: str, is_address: Callable[[str], bool],
                mapping: ColumnMapping | None = None, lines: Sequence[int] = ()) -> Layout | Unsure:
    """The layout of a file from its first non-blank records (a sample, parsed with its delimiter), or why it is
    unsure. `is_address` says whether a cell holds an address (in any form the rows are read in); `lines`, the
    line each record starts on (to say where a header is)."""
    if not records:
        return replace(SEED_LAYOUT, delimiter=delimiter)
    header_at = _header_position(records, is_address)
    if mapping is not None:
        layout = _mapped(records, header_at, delimiter, is_address, mapping)
    elif header_at is not None:
        header = records[header_at]
        emails = tuple(i for i, label in enumerate(header) if is_email_label(label))
        layout = _with_header(header, header_at, emails, delimiter, "")
    else:
        layout = _by_content(records, delimiter, is_address)
    if isinstance(layout, Layout) and layout.skip_records > 1:  # a preamble: say on which line the header is
        line = lines[layout.skip_records - 1] if len(lines) >= layout.skip_records else layout.skip_records
        layout = replace(layout, found_by=f"header on line {line}: {layout.found_by}")
    return layout


def _header_position(records: Sequence[list[str]], is_address: Callable[[str], bool]) -> int | None:
    """The header: among the first records, one of short labels, one of them naming an email column, above rows
    whose values in such a column are addresses (or above nothing yet); what precedes it is a preamble, made of
    records narrower than it and holding no address (LinkedIn's notes). A data row whose name happens to be
    "No Email" is no header: no addresses below it."""
    for index, fields in enumerate(records[:HEADER_SEARCH_RECORDS]):
        emails = [i for i, cell in enumerate(fields) if len(cell) <= 60 and is_email_label(cell)]
        if not emails or any("@" in cell for cell in fields):
            continue
        before, below = records[:index], records[index + 1:]
        if any(len(earlier) >= len(fields) or any(map(is_address, earlier)) for earlier in before):
            continue
        if not below or any(i < len(row) and is_address(row[i]) for row in below for i in emails):
            return index
    return None


def _with_header(header: list[str], header_at: int, emails: tuple[int, ...], delimiter: str, how: str,
                 names: tuple[int, ...] | None = None) -> Layout:
    labels = [label_key(label) for label in header]
    if names is None:
        names = _name_columns(labels, set(emails))
    needed = max((*emails[:1], *names)) + 1
    named = " + ".join(repr(header[i].strip()) for i in names)
    found = (
        f"email from {', then '.join(repr(header[i].strip()) for i in emails)}{f' ({how})' if how else ''}, "
        f"name from {named or 'no column (the greeting says Hi there, or the name an address is written with)'}")
    return Layout(email_columns=emails, name_columns=names, min_columns=needed, max_columns=len(header),
                  header=tuple(label.strip() for label in header), delimiter=delimiter, skip_records=header_at + 1,
                  found_by=found)


def _name_columns(labels: list[str], emails: set[int]) -> tuple[int, ...]:
    """A full-name column; else first (and) last; only from labels that say so."""
    def first(names: set[str]) -> int | None:
        return next((i for i, label in enumerate(labels) if label in names and i not in emails), None)

    given, family = first(_FIRST_NAMES), first(_LAST_NAMES)
    ambiguous_last, ambiguous_first = first(_FULL_OR_LAST), first(_FULL_OR_FIRST)
    if ambiguous_last is not None and given is not None:
        family = family if family is not None else ambiguous_last
        ambiguous_last = None
    if ambiguous_first is not None and family is not None:
        given = given if given is not None else ambiguous_first
        ambiguous_first = None
    full = first(_FULL_NAMES)
    full = full if full is not None else ambiguous_last if ambiguous_last is not None else ambiguous_first
    if full is not None:
        return (full,)
    return tuple(i for i in (given, family) if i is not None)


def _by_content(records: Sequence[list[str]], delimiter: str, is_address: Callable[[str], bool]) -> Layout | Unsure:
    """No email label: the column whose values are addresses, if exactly one is."""
    widest = max(len(fields) for fields in records)
    first_is_header = False
    candidates = _address_columns(records, widest, is_address)
    if not candidates and len(records) > 1:
        later = _address_columns(records[1:], widest, is_address)
        if len(later) == 1 and _looks_like_header(records[0], later[0], is_address):
            candidates, first_is_header = later, True
    shown = _shown(records)
    if not candidates:
        return Unsure("no column holds email addresses (and no header names one)", _column_names(widest), shown)
    if len(candidates) > 1:
        names = " and ".join(f"column {i + 1}" for i in candidates)
        return Unsure(f"{names} all hold email addresses: which one is to be emailed?", _column_names(widest), shown)
    (email,) = candidates
    if first_is_header or _looks_like_header(records[0], email, is_address):
        how = f"the values under {records[0][email].strip()!r} are addresses"
        return _with_header(records[0], 0, (email,), delimiter, how)
    if email == 1:
        return replace(SEED_LAYOUT, delimiter=delimiter)
    if widest == 1:
        return Layout(email_columns=(0,), name_columns=(), min_columns=1, max_columns=1, delimiter=delimiter,
                      found_by="no header; one column of addresses (the greeting says Hi there, or the name an "
                           "address is written with)")
    return Unsure(f"the file has no header, and its addresses are in column {email + 1}: which column, if any, holds "
                  "the name?", _column_names(widest), shown)


def _address_columns(records: Sequence[list[str]], widest: int, is_address: Callable[[str], bool]) -> list[int]:
    """The columns at least half of whose filled values are written as addresses (valid or not: which column
    holds the addresses is the question here; each row's address is judged when its row is read)."""
    candidates = []
    for column in range(widest):
        values = [fields[column] for fields in records if column < len(fields) and fields[column].strip()]
        if values and sum(_written_as_address(value, is_address) for value in values) >= ADDRESS_SHARE * len(values):
            candidates.append(column)
    return candidates


def _written_as_address(value: str, is_address: Callable[[str], bool]) -> bool:
    text = value.strip()
    return ("@" in text and " " not in text) or is_address(text)


_LABEL = re.compile(r"[^\W\d][\w\s:.-]{0,40}")


def _looks_like_header(fields: list[str], email: int, is_address: Callable[[str], bool]) -> bool:
    """A first row of labels above a column of addresses: its cell there is a word, not a (broken) address, no
    cell of it holds an @, and one of its cells is a label we know (a name's). Else it is a data row with a
    malformed address: a row to be counted, not a header to be skipped."""
    known = _FULL_NAMES | _FIRST_NAMES | _LAST_NAMES | _FULL_OR_LAST | _FULL_OR_FIRST
    return (email < len(fields) and bool(_LABEL.fullmatch(fields[email].strip()))
            and not any("@" in cell for cell in fields) and not is_address(fields[email])
            and any(label_key(cell) in known for cell in fields))


def _column_names(widest: int) -> tuple[str, ...]:
    return tuple(f"column {i + 1}" for i in range(widest))


def _shown(records: Sequence[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(fields) for fields in records[:SAMPLE_ROWS_SHOWN + 1])


def _mapped(records: Sequence[list[str]], header_at: int | None, delimiter: str, is_address: Callable[[str], bool],
            mapping: ColumnMapping) -> Layout | Unsure:
    """The layout a person gave on the upload: columns by header label or by number."""
    widest = max(len(fields) for fields in records)
    if header_at is None and len(records) > 1 and not any(map(is_address, records[0])) and any(
            is_address(cell) for fields in records[1:] for cell in fields):
        header_at = 0  # a first row of labels above rows with addresses
    header = records[header_at] if header_at is not None else None
    said = f"as said on the upload ({mapping.describe()})"
    try:
        if mapping.email_column:
            emails: tuple[int, ...] = (_column(mapping.email_column, header, widest),)
        elif header is not None and (labelled := tuple(i for i, label in enumerate(header) if is_email_label(label))):
            emails = labelled
        else:
            found = _by_content(records, delimiter, is_address)
            if isinstance(found, Unsure):
                return found
            emails = found.email_columns
        names = () if mapping.name_columns.lower() in ("none", "-") else tuple(
            _column(part, header, widest) for part in mapping.name_columns.split(",") if part.strip())
        if not mapping.name_columns and header is not None:
            names = _name_columns([label_key(label) for label in header], set(emails))
    except MappingError as error:
        return Unsure(f"the mapping given on the upload ({mapping.describe()}) {error}",
                      tuple(header) if header else _column_names(widest), _shown(records))
    if header is not None and header_at is not None:
        layout = _with_header(header, header_at, emails, delimiter, "", names)
        return replace(layout, found_by=f"{said}: {layout.found_by}")
    needed = max((*emails, *names)) + 1
    named = " + ".join(f"column {i + 1}" for i in names) or "no column"
    return Layout(email_columns=emails, name_columns=names, min_columns=needed, max_columns=max(widest, needed),
                  delimiter=delimiter,
                  found_by=f"{said}: no header; email from column {emails[0] + 1}, name from {named}")


def _column(said: str, header: list[str] | None, widest: int) -> int:
    said = said.strip()
    if said.isdigit():
        if not 1 <= int(said) <= widest:
            raise MappingError(f"names column {said}, and the file has {widest}")
        return int(said) - 1
    if header is None:
        raise MappingError(f"names a column {said!r}, and the file has no header: give its number (1, 2...)")
    keys = [label_key(label) for label in header]
    if label_key(said) not in keys:
        raise MappingError(f"names a column {said!r}, which its header does not have")
    return keys.index(label_key(said))
