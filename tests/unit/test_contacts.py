"""Rows of a CSV file -> one verdict each: contact, invalid (with a reason) or duplicate."""

import io
import re
import unicodedata

import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from common.domain.columns import Layout
from common.domain.contacts import (
    Contact,
    ContactReader,
    DuplicateRow,
    InvalidEmail,
    InvalidRow,
    _plain_email,
    clean_name,
    normalise_email,
    read_contacts,
)


def verdicts(text: str) -> list:
    return list(read_contacts(io.StringIO(text, newline="")))


def test_seed_format_rows_become_contacts_with_their_line_numbers():
    rows = verdicts("David Smith, david.smith@example.com, 555-555-5555, 12345 Anywhere St, San Diego, CA, 92101\n"
                    "Sarah Smith, sarah.smith@example.com, 222-222-2222, 67890 Anywhere St, San Diego, CA, 92101\n")
    assert rows == [Contact("david.smith@example.com", "David Smith", 1),
                    Contact("sarah.smith@example.com", "Sarah Smith", 2)]


def test_a_header_row_is_recognised_and_its_columns_are_used():
    rows = verdicts("email,Full Name\nann@example.com,Ann Lee\n")
    assert rows == [Contact("ann@example.com", "Ann Lee", 2)]


@pytest.mark.parametrize(("header", "row", "used"), [
    ("First Name,Last Name,Email Address", "Ada,Lovelace,ada@example.com",
     "email from 'Email Address', name from 'First Name' + 'Last Name'"),
    ("Given Name,Additional Name,Family Name,E-mail 1 - Type,E-mail 1 - Value",  # Google Contacts
     "Ada,,Lovelace,* Home,ada@example.com", "email from 'E-mail 1 - Value', name from 'Given Name' + 'Family Name'"),
    ("Display Name,email_address", "Ada Lovelace,ada@example.com",
     "email from 'email_address', name from 'Display Name'"),
    ("  E-MAIL , Full  Name", "ada@example.com, Ada Lovelace", "email from 'E-MAIL', name from 'Full  Name'"),
])
def test_headers_are_recognised_as_real_exports_name_them(header, row, used):
    # Given an export whose header names the columns its own way
    reader = ContactReader(io.StringIO(f"{header}\n{row}\n", newline=""))
    # When it is read, Then the name comes out whole and the reader says which columns it used
    assert list(reader) == [Contact("ada@example.com", "Ada Lovelace", 2)]
    assert reader.layout is not None and reader.layout.describe() == used


def test_an_email_only_file_greets_generically_and_a_missing_last_name_is_no_problem():
    assert verdicts("Email\nann@example.com\n") == [Contact("ann@example.com", "", 2)]
    assert verdicts("First Name,Last Name,Email\nAnn,,ann@example.com\n") == [Contact("ann@example.com", "Ann", 2)]


def test_a_layout_survives_a_checkpoint_and_reads_one_written_before_first_and_last_names():
    layout = ContactReader(io.StringIO("Given Name,Family Name,Email\n", newline=""))
    list(layout)
    assert Layout.from_json(layout.layout.to_json()) == layout.layout
    old = Layout.from_json({"name_column": 1, "email_column": 0, "min_columns": 2, "max_columns": 3})
    assert (old.name_columns, old.email_column, old.header) == ((1,), 0, ())


@pytest.mark.parametrize(("text", "delimiter"), [
    ("sep=;\nName;Email\nZoë Ölund;zoe@example.com\n\"Smith; Bob\";bob@example.com\n", ";"),  # Excel, most of Europe
    ("Name;Email\nZoë Ölund;zoe@example.com\n\"Smith; Bob\";bob@example.com\n", ";"),
    ("Name\tEmail\nZoë Ölund\tzoe@example.com\n\"Smith; Bob\"\tbob@example.com\n", "\t"),  # "Unicode Text"
    ("email|full name\nzoe@example.com|Zoë Ölund\nbob@example.com|Smith; Bob\n", "|"),
    ("Name,Email\nZoë Ölund,zoe@example.com\n\"Smith; Bob\",bob@example.com\n", ","),
])
def test_the_delimiter_is_told_from_the_file(text, delimiter):
    # Given the same two contacts exported with a comma, a semicolon (with or without Excel's sep= line),
    # a tab or a pipe
    reader = ContactReader(io.StringIO(text, newline=""))
    # When read, Then both come out with their names, numbered by their line in the file
    first_row = 3 if text.startswith("sep=") else 2
    assert [(c.email, c.name, c.row) for c in reader] == [("zoe@example.com", "Zoë Ölund", first_row),
                                                          ("bob@example.com", "Smith; Bob", first_row + 1)]
    assert reader.layout is not None and reader.layout.delimiter == delimiter


def test_the_seed_format_keeps_its_comma_and_space_separator():
    reader = ContactReader(io.StringIO("Ann Lee, ann@example.com, 555; ext 2, 1 Main St, Austin, TX, 73301\n"
                                       "Bo Chen, bo@example.com, 555, 2 Main St, Austin, TX, 73301\n", newline=""))
    assert [c.name for c in reader] == ["Ann Lee", "Bo Chen"]
    assert reader.layout.delimiter == "," and reader.layout.describe().startswith("no header")


def test_quoted_fields_crlf_and_a_bom_decoded_from_bytes():
    raw = '\ufeffName,Email\r\n"Smith, Bob","bob@example.com"\r\n'.encode()
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    assert list(read_contacts(text)) == [Contact("bob@example.com", "Smith, Bob", 2)]


def test_emails_are_trimmed_lower_cased_and_stripped_of_mailto():
    assert normalise_email("  MailTo:Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("raw", ["", "   ", "not-an-email", "a b@example.com", "ann@", "@example.com"])
def test_malformed_emails_are_rejected_with_a_reason(raw):
    with pytest.raises(InvalidEmail) as error:
        normalise_email(raw)
    assert str(error.value)


def test_bad_rows_are_invalid_with_a_reason_and_never_stop_the_file():
    rows = verdicts("Short Row\n"
                    "No Email, , 555\n"
                    "Bad, not-an-email\n"
                    "Too, many@example.com, 1, 2, 3, 4, 5, 6\n"
                    ", , , , , ,\n"
                    "Good, good@example.com\n")
    reasons = {r.row: r.reason for r in rows if isinstance(r, InvalidRow)}
    assert reasons[1].startswith("too few columns")
    assert reasons[2] == "missing email"
    assert reasons[3].startswith("invalid email")
    assert reasons[4].startswith("too many columns")
    assert reasons[5] == "missing email"
    assert rows[-1] == Contact("good@example.com", "Good", 6)


def test_blank_lines_are_not_rows():
    assert verdicts("\n\nAnn, ann@example.com\n\n") == [Contact("ann@example.com", "Ann", 3)]


def test_the_same_email_twice_in_a_file_is_a_duplicate_whatever_its_case():
    rows = verdicts("Ann, ann@example.com\nAnnie, ANN@example.com \n")
    assert rows == [Contact("ann@example.com", "Ann", 1), DuplicateRow(2, "ann@example.com")]


def test_names_lose_control_characters_and_extra_spaces():
    assert clean_name(" Ann\r\nLee\x00  Jr ") == "Ann Lee Jr"


@pytest.mark.parametrize(("raw", "greeted"), [
    ("Win a prize at https://evil.example/x?y=1 now", "Win a prize at now"),
    ("www.spam.example Ann", "Ann"),
    ("Ann \u202eeeL", "Ann eeL"),  # a right-to-left override would show the name reversed
    ("An\u200bn Lee", "Ann Lee"),  # zero-width space
    ("Zoë Ölund-Łukasz O'Brien, Jr.", "Zoë Ölund-Łukasz O'Brien, Jr."),  # letters, marks, punctuation stay
])
def test_names_lose_links_and_invisible_formatting_but_keep_what_a_person_writes(raw, greeted):
    assert clean_name(raw) == greeted


def test_an_overlong_name_or_field_is_invalid():
    rows = verdicts(f"{'x' * 201}, ann@example.com\nBob, bob@example.com, {'9' * 1001}\n")
    assert [type(r) for r in rows] == [InvalidRow, InvalidRow]


def test_an_empty_name_is_kept_and_greeted_generically():
    assert verdicts(", ann@example.com\n") == [Contact("ann@example.com", "", 1)]


def test_rejected_cells_that_a_spreadsheet_would_run_are_written_as_text():
    from common.adapters.s3 import spreadsheet_safe

    assert spreadsheet_safe("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert spreadsheet_safe("@SUM(1)") == "'@SUM(1)"
    assert spreadsheet_safe("Ann Lee") == "Ann Lee"


def test_remembering_verdicts_changes_none_and_leaves_email_validator_as_shipped():
    import importlib

    from email_validator import EmailNotValidError, validate_email

    addresses = ["Ann@Example.com", "b@EXAMPLE.COM", "jürgen@bücher.de", "x@localhost", "y@invalid",
                 "z@-bad-.com", "w@xn--bcher-kva.de", "v@a..b", "u@[127.0.0.1]", "t@" + "a" * 64 + ".com",
                 "s@example.com", "r@ex_ample.com", "q@exa mple.com", "p@test", "Zoë.Ölund@example.com"]

    def ours(address):
        try:
            return normalise_email(address)
        except InvalidEmail as error:
            return str(error)

    def library(address):  # the public API, called afresh every time
        try:
            return validate_email(address, check_deliverability=False).normalized.lower()
        except EmailNotValidError as error:
            return f"invalid email: {error}"

    # Given every address judged twice (the second time from memory)
    assert [ours(a) for a in addresses * 2] == [library(a) for a in addresses * 2]
    # And no private function of the library is replaced at import
    module = importlib.import_module("email_validator.validate_email")
    assert not hasattr(module.validate_email_domain_name, "cache_info")


_LOCAL_CHARS = "abcXYZ019_+-.." + "üéñßİЖжλ中" + "\u0301\u0660\u00b2!#'\" @\u200b"
_DOMAIN_CHARS = "abcxyz019-.."


def _dotted(alphabet: str, max_atoms: int) -> st.SearchStrategy[str]:
    """Mostly well-formed: atoms without dots, joined by dots (so the fast path is often taken)."""
    atoms = st.text(alphabet=alphabet.replace(".", ""), min_size=1, max_size=12)
    return st.one_of(st.lists(atoms, min_size=1, max_size=max_atoms).map(".".join),
                     st.text(alphabet=alphabet, min_size=0, max_size=70))


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(local=_dotted(_LOCAL_CHARS, 6), domain=_dotted(_DOMAIN_CHARS, 3),
       tld=st.sampled_from(["com", "COM", "io", "test", "local", "x", "c0m", "xn--p1ai", "museum", ""]))
def test_the_plain_address_fast_path_agrees_with_email_validator(local, domain, tld):
    # Given any address built from plain and awkward characters
    address = f"{local}@{domain}.{tld}" if tld else f"{local}@{domain}"
    # When the fast path takes it, Then email-validator accepts it too and normalises it the same way
    fast = _plain_email(address)
    if fast is not None:
        assert validate_email(address, check_deliverability=False).normalized.lower() == fast


@pytest.mark.parametrize("address", [
    "ann@example.com", "Ann.Lee+news@Mail.Example.CO", "jörg.müller@example.de", "ЖАННА@example.ru",
    "a_b-c@sub-domain.example.org", "x@a.b.c.d.example.museum"])
def test_plain_addresses_take_the_fast_path(address):
    assert _plain_email(address) == validate_email(address, check_deliverability=False).normalized.lower()


@pytest.mark.parametrize("address", [
    "ann@example.test", "ann@host.local", "ann@xn--p1ai.com", "a..b@example.com", ".a@example.com",
    "e\u0301@example.com", "\u0660@example.com", "ann@-example.com", "ann@example.c0m", '"a b"@example.com',
    "ann@[127.0.0.1]", "ann@localhost", "a" * 65 + "@example.com"])
def test_anything_unusual_is_left_to_email_validator(address):
    assert _plain_email(address) is None


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(raw=st.text(alphabet="Ab é中 \t\r\n\x00\x7f\xa0\u2028\u3000-\u200b\u202ew.:/h", max_size=30))
def test_names_are_cleaned_the_same_with_or_without_the_fast_path(raw):
    visible = "".join(c for c in raw if unicodedata.category(c) != "Cf")
    slow = re.sub(r"[\x00-\x1f\x7f]+", " ", visible)
    slow = re.sub(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*", " ", slow)
    assert clean_name(raw) == re.sub(r"\s+", " ", slow).strip()
