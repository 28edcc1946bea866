"""The edges of reading contacts: limits at their exact value, headers naming only part of a name, delimiters
told from hard samples, and what an invalid row carries into the rejects file."""

from __future__ import annotations

import pytest

from common.domain.columns import Layout
from common.domain.contacts import (
    MAX_FIELD_LENGTH,
    MAX_NAME_LENGTH,
    OVERLONG_REASON,
    Contact,
    ContactReader,
    DuplicateRow,
    InvalidRow,
    _plain_email,
    clean_name,
    sniff_delimiter,
)
from common.domain.lines import OVERLONG_LINE


def read(text: str, **options) -> list:
    return list(ContactReader(text.splitlines(keepends=True), **options))


# -- plain addresses: the fast path's limits ---------------------------------------------------------
def test_a_plain_address_of_254_characters_is_plain_and_one_longer_is_left_to_email_validator():
    at_limit = "a" * 60 + "@" + ".".join(["b" * 60] * 3) + ".co" + "m" * 8  # 254
    assert len(at_limit) == 254 and _plain_email(at_limit.upper()) == at_limit
    assert _plain_email(at_limit + "m") is None


def test_a_local_part_of_64_characters_is_plain_and_65_is_left_to_email_validator():
    assert _plain_email("a" * 32 + "." + "b" * 31 + "@example.com") == "a" * 32 + "." + "b" * 31 + "@example.com"
    assert _plain_email("a" * 32 + "." + "b" * 32 + "@example.com") is None  # email-validator refuses it


def test_non_ascii_addresses_are_plain_only_in_nfc_and_within_254_bytes():
    assert _plain_email("zoë@example.com") == "zoë@example.com"
    assert _plain_email("zoe\u0308@example.com") is None  # decomposed: email-validator normalises it
    long_local = "é" * 60  # 120 bytes
    within = f"{long_local}@{'b' * 63}.{'c' * 63}.commm"  # 254 bytes, 194 characters
    assert len(within.encode()) == 254 and _plain_email(within) == within
    assert _plain_email(within + "m") is None


def test_a_special_use_domain_is_left_to_email_validator():
    assert _plain_email("ann@printer.local") is None and _plain_email("ann@example.com") == "ann@example.com"


# -- names ---------------------------------------------------------------------------------------------
def test_runs_of_spaces_in_a_name_collapse_to_one():
    assert clean_name("Ann  Lee") == "Ann Lee"
    assert clean_name(" Ann Lee ") == "Ann Lee"


def test_a_name_of_exactly_the_longest_length_is_kept_and_one_more_is_invalid():
    name = "A" * MAX_NAME_LENGTH
    (kept,) = read(f"{name}, ann@example.com\n")
    assert kept == Contact(email="ann@example.com", name=name, row=1)
    (refused,) = read(f"{name}B, ann@example.com\n")
    assert refused == InvalidRow(1, f"name longer than {MAX_NAME_LENGTH} characters",
                                 (name + "B", "ann@example.com"))


def test_a_field_of_exactly_the_longest_length_is_read_and_one_more_makes_the_row_invalid():
    phone = "5" * MAX_FIELD_LENGTH
    (kept,) = read(f"Ann, ann@example.com, {phone}\n")
    assert isinstance(kept, Contact)
    (refused,) = read(f"Ann, ann@example.com, {phone}5\n")
    assert refused == InvalidRow(1, f"a field is longer than {MAX_FIELD_LENGTH} characters",
                                 ("Ann", "ann@example.com", phone + "5"))


# -- what an invalid row carries into the rejects file ---------------------------------------------------
def test_invalid_rows_carry_their_row_number_reason_and_fields():
    rows = read("Ann\nA, b, c, d, e, f, g, h\nBob, not-an-address\n" + "".join(
        f"N{i}, n{i}@example.com\n" for i in range(3)))  # (mostly addresses in column 2: the seed's format)
    assert rows[:3] == [
        InvalidRow(1, "too few columns (1, expected at least 2)", ("Ann",)),
        InvalidRow(2, "too many columns (8, expected at most 7)", ("A", "b", "c", "d", "e", "f", "g", "h")),
        InvalidRow(3, "invalid email: An email address must have an @-sign.", ("Bob", "not-an-address"))]


def test_an_overlong_line_is_one_invalid_row_with_no_fields():
    assert read(f"{OVERLONG_LINE}\nAnn, ann@example.com\n") == [
        InvalidRow(1, OVERLONG_REASON, ()), Contact(email="ann@example.com", name="Ann", row=2)]


def test_a_record_the_csv_module_cannot_read_is_invalid_and_the_next_rows_are_read():
    # Given a field over the csv module's own limit (131,072 characters), after 10 lines read before
    rows = read("Ann, " + "x" * 200_000 + "\nBob, bob@example.com\n", first_line=10)
    # Then that record is one invalid row, numbered as its line in the file, and Bob is read after it
    assert rows[0].row == 11 and rows[0].fields == () and rows[0].raw.startswith("Ann, xxx")
    assert rows[0].reason.startswith("unreadable CSV record")
    assert rows[1:] == [Contact(email="bob@example.com", name="Bob", row=12)]


def test_an_empty_file_has_no_rows():
    assert read("") == []


def test_a_quoted_email_after_a_space_is_read_without_its_quotes():
    assert read('Ann Lee, "ann@example.com"\n') == [Contact(email="ann@example.com", name="Ann Lee", row=1)]


def test_text_after_a_closing_quote_is_kept_as_part_of_the_field():
    # Lenient as spreadsheets are: "Ann" Lee is a name, not a broken record
    assert read('"Ann" Lee, ann@example.com\n') == [Contact(email="ann@example.com", name="Ann Lee", row=1)]


def test_only_as_many_addresses_as_asked_are_remembered_for_in_file_duplicates():
    rows = read("A, a@example.com\nB, b@example.com\nB, b@example.com\nA, a@example.com\n", remember=1)
    assert [type(r).__name__ for r in rows] == ["Contact", "Contact", "Contact", "DuplicateRow"]
    assert rows[3] == DuplicateRow(4, "a@example.com")


# -- headers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["First Name", "Surname"])
def test_a_header_with_only_a_first_or_only_a_last_name_takes_the_name_from_that_column(label):
    reader = ContactReader(f"Email,Phone,{label}\nann@example.com,555,Ann\n".splitlines(keepends=True))
    assert list(reader) == [Contact(email="ann@example.com", name="Ann", row=2)]
    assert reader.layout.describe() == f"email from 'Email', name from {label!r}"


@pytest.mark.parametrize("text", ["Email,Nickname\nann@example.com,Annie\n", "Nickname,Email\nAnnie,ann@example.com\n",
                                  "Email Address,Phone Number\nann@example.com,+1 555 0100\n"])
def test_a_header_without_a_name_column_greets_without_a_name_never_by_another_column(text):
    assert read(text) == [Contact(email="ann@example.com", name="", row=2)]


def test_a_header_with_only_an_email_column_reads_contacts_without_names():
    reader = ContactReader(["Email\n", "ann@example.com\n"])
    assert list(reader) == [Contact(email="ann@example.com", name="", row=2)]
    assert reader.layout.describe() == ("email from 'Email', name from no column (the greeting says Hi there, or the "
                                        "name an address is written with)")


def test_a_row_shorter_than_its_header_needs_is_invalid():
    assert read("Name,Phone,Email\nAnn,555\nBob,556,bob@example.com\n") == [
        InvalidRow(2, "too few columns (2, expected at least 3)", ("Ann", "555")),
        Contact(email="bob@example.com", name="Bob", row=3)]


# -- layouts and delimiters --------------------------------------------------------------------------------
def test_a_seed_format_file_with_semicolons_keeps_its_delimiter_for_its_later_segments():
    reader = ContactReader(["Ann;ann@example.com\n", "Bob;bob@example.com\n"])
    assert len(list(reader)) == 2
    assert reader.layout.delimiter == ";"
    assert reader.layout.describe().startswith("delimiter semicolon; no header")


def test_a_delimiter_named_by_excel_is_described_as_written():
    layout = Layout(name_columns=(0,), email_columns=(1,), min_columns=2, max_columns=2, header=("Name", "Email"),
                    delimiter=":", found_by="email from 'Email', name from 'Name'")
    assert layout.describe() == "delimiter ':'; email from 'Email', name from 'Name'"


def test_a_checkpoint_written_before_layouts_said_why_describes_its_columns_as_then():
    layout = Layout.from_json({"name_columns": [1], "email_column": 0, "min_columns": 1, "max_columns": 2,
                               "header": ["Email"]})
    assert layout.describe() == "email from 'Email', name from no column"


def test_a_checkpoint_written_before_delimiters_were_sniffed_reads_commas():
    layout = Layout.from_json({"name_columns": [0], "email_column": 1, "min_columns": 2, "max_columns": 7})
    assert (layout.delimiter, layout.header) == (",", ())


def test_excel_sep_line_after_a_byte_order_mark_names_the_delimiter_and_is_not_a_row():
    rows = read("\ufeffsep=;\nAnn;ann@example.com\n")
    assert rows == [Contact(email="ann@example.com", name="Ann", row=2)]


def test_when_two_delimiters_read_the_sample_equally_well_the_comma_wins():
    assert sniff_delimiter(["a,b;c\n", "d,e;f\n"]) == ","


def test_the_most_consistent_delimiter_wins_over_the_first_that_reads_two_fields():
    assert sniff_delimiter(["a,b;c\n", "d,e,f;g\n", "h,i,j,k;l\n"]) == ";"


def test_a_line_too_long_for_the_csv_module_with_commas_is_sniffed_with_the_other_delimiters():
    assert sniff_delimiter(["a" * 70_000 + ";" + "b" * 70_000 + "\n"]) == ";"


def test_sniffing_reads_quoted_fields_after_a_space_as_the_reader_does():
    sample = ['"Cy" Dunn, "Bob; Jr", "Ann ""A"" Lee"\n', 'ann@x.com, "Lee, Ann"\n', 'Ann Lee;"Ann ""A"" Lee"\n']
    assert sniff_delimiter(sample) == ";"


def test_sniffing_is_lenient_with_text_after_a_closing_quote_as_the_reader_is():
    sample = ['"Ann ""A"" Lee","Bob; Jr"\n', '555-1234; "Ann ""A"" Lee"; 555-1234\n']
    assert sniff_delimiter(sample) == ","


def test_consistency_is_the_share_of_records_with_the_usual_count_not_their_number():
    # A quote left open on the first line joins the next one into one record with ';' but not with ','
    assert sniff_delimiter(['Ann Lee; x; "Lee, Ann\n', "x\n"]) == ";"


def test_an_unreadable_record_in_the_sample_does_not_stop_the_count_of_the_records_after_it():
    # With commas the first record is one field over the csv module's limit; the rest read alike with
    # semicolons and commas, so the comma wins (as on a tie) only if the records after it are counted
    sample = ["a" * 70_000 + ";" + "b" * 70_000 + "\n", "Ann;ann@example.com, 555\n", "Bob;bob@example.com, 556\n"]
    assert sniff_delimiter(sample) == ","


def test_lines_of_spaces_are_not_records_when_sniffing():
    assert sniff_delimiter(["Ann;ann@example.com\n", "  \n", "  \n", "  \n", "Bob;bob@example.com\n"]) == ";"


def test_only_a_line_that_is_exactly_sep_and_one_character_names_the_delimiter():
    assert read("Xsep=:\nAnn, ann@example.com\n") == [
        InvalidRow(1, "too few columns (1, expected at least 2)", ("Xsep=:",)),
        Contact(email="ann@example.com", name="Ann", row=2)]
