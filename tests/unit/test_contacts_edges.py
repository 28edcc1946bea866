"""The edges of reading contacts: limits at their exact value, headers naming only part of a name, delimiters
told from hard samples, and what an invalid row carries into the rejects file."""

from __future__ import annotations

import io

import pytest

from common.domain.columns import Layout
from common.domain.contacts import (
    BROKEN_RECORD_REASON,
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


# -- records broken by a quote, and records that span lines --------------------------------------------
def good(n: int, first: int = 0) -> str:
    return "".join(f"Person {i}, p{i}@example.com\n" for i in range(first, first + n))


def test_a_stray_quote_before_a_line_that_is_no_row_costs_both_as_one_record_as_written():
    # Given a stray quote, then a line that reads alone but is no row, then rows
    rows = read('"Carl, Jr, carl@example.com\na note\n' + good(3))
    # Then the two are one broken record, at the first line, with their text as written; the rows are read
    assert rows[0] == InvalidRow(1, BROKEN_RECORD_REASON, (), '"Carl, Jr, carl@example.com\na note\n')
    assert [r.row for r in rows[1:]] == [3, 4, 5] and all(isinstance(r, Contact) for r in rows[1:])


def test_two_stray_quotes_near_each_other_cost_their_own_rows_only():
    rows = read(good(2) + '"Carl, carl@example.com\n' + good(2, 2) + '"Dee, dee@example.com\n' + good(3, 4))
    broken = [r.row for r in rows if isinstance(r, InvalidRow)]
    assert broken == [3, 6] and sum(isinstance(r, Contact) for r in rows) == 7


@pytest.mark.parametrize(("notes", "found"), [(19, True), (20, False)])
def test_a_broken_record_ends_at_a_row_only_within_the_lines_it_looks_ahead(notes, found):
    # Given a stray quote, then some lines that are no rows, then a row, then a quote that closes the field
    rows = read('"Carl, carl@example.com\n' + "a note\n" * notes + 'Ann, ann@example.com\nclosing" note\n')
    # Then within 20 lines of it the row is found and read; further, the record stands whole, judged as it is
    if found:
        assert rows[0].reason == BROKEN_RECORD_REASON and rows[0].raw.count("\n") == 1 + notes
        assert [r.email for r in rows if isinstance(r, Contact)] == ["ann@example.com"]
    else:
        assert [(r.row, r.reason[:15]) for r in rows] == [(1, "too few columns")]


def test_a_row_after_a_stray_quote_is_found_as_the_reader_reads_rows_quotes_and_all():
    # (a quoted address after a space, and text after a closing quote, read as the lenient reader reads them)
    rows = read('"Carl, carl@example.com\n"Ann" Lee, "ann@example.com"\n' + good(2))
    assert rows[0] == InvalidRow(1, BROKEN_RECORD_REASON, (), '"Carl, carl@example.com\n')
    assert rows[1] == Contact(email="ann@example.com", name="Ann Lee", row=2)


def test_a_line_that_leaves_a_quote_open_is_no_row_to_end_a_broken_record_at():
    # Given a stray quote, then a row whose own quote is left open, then a row
    rows = read('"Carl, Jr, carl@example.com\nAnn, "ann@example.com\nBob, bob@example.com\n')
    # Then the first two are one record, judged as one (the second's quote closed the first's), and Bob is read
    assert (rows[0].row, rows[0].reason) == (1, "too few columns (1, expected at least 2)")
    assert rows[1:] == [Contact(email="bob@example.com", name="Bob", row=3)]


def test_a_quote_that_never_closes_over_the_field_limit_with_no_row_in_sight_costs_its_first_line_only():
    # Given a stray quote, then 30 long lines that are no rows (over the csv module's field limit), then rows
    filler = ("x" * 5_000 + "\n") * 30
    rows = read('"Carl, carl@example.com\n' + filler + good(2))
    # Then its first line is the broken record, each long line is a row of its own, and the rows are read
    assert rows[0] == InvalidRow(1, BROKEN_RECORD_REASON, (), '"Carl, carl@example.com\n')
    assert len(rows) == 1 + 30 + 2 and [r.row for r in rows[-2:]] == [32, 33]
    assert all(isinstance(r, Contact) for r in rows[-2:])


def test_a_stray_quote_on_the_last_lines_gives_back_the_line_after_it_to_be_read_on_its_own():
    # Given a file that ends with a stray quote and one line over the field limit
    rows = read('"Carl, carl@example.com\n' + "y" * 140_000 + "\n")
    # Then both lines are accounted for, each as its own broken record, with its own text
    assert [(r.row, r.reason, len(r.raw)) for r in rows] == [
        (1, BROKEN_RECORD_REASON, 24), (2, BROKEN_RECORD_REASON, 140_001)]


def test_a_record_whose_quoted_field_holds_a_line_break_but_no_valid_address_is_judged_whole():
    rows = read('Ann, "not an\naddress"\n' + good(3))
    assert rows[0] == InvalidRow(1, rows[0].reason, ("Ann", "not an\naddress"))
    assert rows[0].reason.startswith("invalid email") and [r.row for r in rows[1:]] == [3, 4, 5]


def test_a_stray_quote_in_the_first_lines_does_not_hide_the_column_of_addresses():
    rows = read('Zoë Café, not-an-address\n"Carl, Jr, carl@example.com\n' + good(5))
    assert rows[0].row == 1 and rows[0].reason.startswith("invalid email")
    assert rows[1].reason == BROKEN_RECORD_REASON and sum(isinstance(r, Contact) for r in rows) == 5


def test_names_that_span_lines_in_a_file_without_a_header_are_read_as_one_row():
    # Every line leaves a quote open, so the columns are told from the records as they span lines
    rows = read('"Ann\nLee", ann@example.com\n"Bob\nStone", bob@example.com\n')
    assert rows == [Contact(email="ann@example.com", name="Ann Lee", row=1),
                    Contact(email="bob@example.com", name="Bob Stone", row=3)]


def test_columns_are_told_from_records_that_span_lines_even_where_they_are_not_the_seed_s():
    # Given a file without a header whose addresses come first and whose every line leaves a quote open
    reader = ContactReader('ann@example.com,"Ann\nLee"\nbob@example.com,"Bob\nStone"\n'.splitlines(keepends=True))
    # Then nothing is read and the file is held, shown with its records read whole
    assert list(reader) == [] and reader.unsure is not None
    assert reader.unsure.first_rows == (("ann@example.com", "Ann\nLee"), ("bob@example.com", "Bob\nStone"))


# -- addresses as people write them -------------------------------------------------------------------
def test_several_addresses_in_a_cell_send_to_the_first_and_count_the_others():
    assert read("ann@example.com ::: ann.work@example.com ::: \nbob@example.com\n") == [
        Contact(email="ann@example.com", name="", row=1, other_addresses=1),
        Contact(email="bob@example.com", name="", row=2)]


def test_an_address_with_its_name_gives_the_name_only_where_no_column_is_named_a_name():
    assert read('Name,Email\nAnn Lee,"Annie <ann@example.com>"\n')[0] == Contact("ann@example.com", "Ann Lee", 2)
    assert read('"Annie Lee" <ann@example.com>\n') == [Contact("ann@example.com", "Annie Lee", 1)]


def test_a_row_whose_address_columns_are_all_empty_is_missing_its_address_however_short_it_is():
    header = "Name,E-mail Address,E-mail 2 Address,E-mail 3 Address\n"
    rows = read(header + "Ann,,,\nBob,\nCy,,cy@example.com\n")
    assert [(r.row, getattr(r, "reason", "")) for r in rows] == [(2, "missing email"), (3, "missing email"), (4, "")]
    assert rows[2] == Contact(email="cy@example.com", name="Cy", row=4)


def test_a_line_that_is_not_text_in_the_file_s_encoding_is_one_invalid_row_with_its_text():
    from common.domain.encodings import EncodingDecision, LineDecoder
    from common.domain.lines import PositionedLines

    data = "Name,Email\nZoë,zoe@example.com\n".encode() + b"Jos\xe9,jose@example.com\n"
    lines = PositionedLines(io.BytesIO(data), decoder=LineDecoder(EncodingDecision("utf-8", "", text_seen=True)))
    rows = list(ContactReader(lines))
    assert rows[1] == InvalidRow(3, "not UTF-8 text (byte 0xE9 at position 4); the rest of the file is UTF-8", (),
                                 "Jos\ufffd,jose@example.com")
