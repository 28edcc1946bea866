"""Which encoding a file is in, decided on evidence and said with its reason; and decoding it line by line.

A misread name is a greeting that can never be taken back, so the rule is written down (docs/csv-files.md):

1. A byte order mark says it: UTF-8, UTF-16 LE or BE (Excel's "Unicode Text").
2. Else UTF-8 when the first bytes are UTF-8, or when they hold UTF-8 characters and only a few bytes
   that are not: those lines are rejected one by one, never the whole file re-read in another encoding.
3. Else one of the single-byte encodings spreadsheets write: Windows-1252 (Excel for Windows) or Mac Roman
   (Excel for Mac's "CSV (Macintosh)"), whichever reads the non-ASCII bytes as the letters names are made
   of (é inside "René", not Ž); a tie goes to Windows-1252, or to Mac Roman when lines end in a bare CR.
4. Else the file is not text.

Reading goes on with the same evidence: a file read as UTF-8 because it was ASCII so far becomes single-byte
at the first line that is not UTF-8 (ASCII reads the same in both); a file that already held UTF-8 text
keeps it, and a line that is not UTF-8 is one rejected row.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass

UTF8 = "utf-8"
WINDOWS_1252 = "windows-1252"
MAC_ROMAN = "mac_roman"
UTF16_LE, UTF16_BE = "utf-16-le", "utf-16-be"
ENCODING_NAMES = {UTF8: "UTF-8", WINDOWS_1252: "Windows-1252", MAC_ROMAN: "Mac Roman", UTF16_LE: "UTF-16 LE",
                  UTF16_BE: "UTF-16 BE"}
BOMS = ((b"\xef\xbb\xbf", UTF8), (b"\xff\xfe", UTF16_LE), (b"\xfe\xff", UTF16_BE))
SINGLE_BYTE = (WINDOWS_1252, MAC_ROMAN)
# What stands in for a line no encoding of the file reads: the reader makes it one invalid row, with the reason
# and the line's text (its unreadable bytes shown as \ufffd), carried base64-encoded so that no delimiter or
# quote of that text splits the marker.
UNDECODABLE_LINE = "\x00\x1fnot-text:"

# Valid multi-byte UTF-8 sequences (2 to 4 bytes).
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# The accented letters Western names are written with: what a right reading turns non-ASCII bytes into.
_NAME_LETTERS = frozenset("àáâãäåæçèéêëìíîïñòóôõöøœùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØŒÙÚÛÜÝŸ")
# The punctuation spreadsheets write beside names (curly quotes, dashes, ellipsis, currency...): neither evidence
# for nor against an encoding. Written as escapes: several look like ASCII.
_PUNCTUATION = frozenset("\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u2022\u20ac\u00ab\u00bb\u00b7"
                         "\u00b0\u00a3\u00a5\u00a7\u00a9\u00ae\u2122\u00a0\u00bf\u00a1")


class NotText(ValueError):
    """No encoding reads the file as text (an image, a spreadsheet's binary format...)."""


@dataclass(frozen=True)
class EncodingDecision:
    encoding: str
    why: str
    text_seen: bool = False  # UTF-8: the file has held non-ASCII UTF-8 text (a bad line is then a bad row)

    @property
    def name(self) -> str:
        return ENCODING_NAMES.get(self.encoding, self.encoding)


def decide_encoding(head: bytes) -> EncodingDecision:
    """The encoding of a file that starts with `head` (up to 64 KiB), by the rule above, and why."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return EncodingDecision(encoding, "its byte order mark says so", text_seen=encoding == UTF8)
    try:
        head.decode(UTF8)
    except UnicodeDecodeError as error:
        if not (error.reason == "unexpected end of data" and error.start >= len(head) - 3):
            return _not_all_utf8(head)
    if head.isascii():
        return EncodingDecision(UTF8, "ASCII so far")
    return EncodingDecision(UTF8, "its bytes are UTF-8", text_seen=True)


def _not_all_utf8(head: bytes) -> EncodingDecision:
    characters = len(_UTF8_SEQUENCE.findall(head))
    bad = head.decode(UTF8, errors="replace").count("\ufffd")
    if characters > 2 * bad:
        return EncodingDecision(UTF8, f"{characters} UTF-8 characters and {bad} byte(s) that are not UTF-8, whose "
                                      "lines are rejected", text_seen=True)
    return decide_single_byte(head)


def decide_single_byte(data: bytes) -> EncodingDecision:
    """Windows-1252 or Mac Roman, whichever reads `data` as names are written; NotText when neither reads it."""
    scores = {encoding: score for encoding in SINGLE_BYTE if (score := _name_likeness(data, encoding)) is not None}
    if not scores:
        raise NotText("the file is not text (no encoding reads its first bytes)")
    bare_cr = b"\r" in data and b"\n" not in data
    best = max(scores.values())
    if scores.get(MAC_ROMAN) == best and (scores.get(WINDOWS_1252) != best or bare_cr):
        why = "not UTF-8; " + _against(scores, WINDOWS_1252) + (
            "; lines end in a bare CR, as Excel for Mac writes them" if bare_cr else "")
        return EncodingDecision(MAC_ROMAN, why)
    return EncodingDecision(WINDOWS_1252, "not UTF-8; " + _against(scores, MAC_ROMAN))


def _against(scores: dict[str, int], other: str) -> str:
    if other not in scores:
        return f"{ENCODING_NAMES[other]} cannot read its bytes"
    return f"its bytes read as the letters of names, better than in {ENCODING_NAMES[other]}"


def _name_likeness(data: bytes, encoding: str) -> int | None:
    """How well `encoding` reads the non-ASCII bytes as name text: +2 for each accented letter in its place, -3 for
    an impossible case change inside a word ("RenŽ", "ìAnn"), -1 for other symbols. None: it cannot be read."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    if any(character < " " and character not in "\t\r\n" for character in text):
        return None
    score = 0
    for index, character in enumerate(text):
        if character.isascii():
            continue
        before = text[index - 1] if index else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        if character in _NAME_LETTERS:
            odd_case = (character.isupper() and before.islower()) or (character.islower() and after.isupper())
            score += -3 if odd_case else 2
        elif character not in _PUNCTUATION and unicodedata.category(character)[0] != "L":
            score -= 1
    return score


class LineDecoder:
    """Decodes a file's lines by the evidence so far (see the module's rule): `decision` is what is in force;
    `switched_at` the line at which a file read as ASCII-so-far UTF-8 turned out to be single-byte."""

    def __init__(self, decision: EncodingDecision):
        self.decision = decision
        self.switched_at = 0

    @property
    def watching(self) -> bool:
        """Read as UTF-8 on ASCII alone so far: the first non-ASCII line decides."""
        return self.decision.encoding == UTF8 and not self.decision.text_seen

    def saw_text(self, line: int) -> None:
        """A line with non-ASCII UTF-8 text: from now on the file is UTF-8 for sure."""
        self.decision = EncodingDecision(UTF8, f"ASCII up to line {line}, then UTF-8", text_seen=True)

    def decode(self, raw: bytes, line: int) -> str:
        """The line's text (what PositionedLines does, inlined there for speed)."""
        try:
            text = raw.decode(self.decision.encoding)
        except UnicodeDecodeError:
            return self.undecodable(raw, line)
        if self.watching and not raw.isascii():
            self.saw_text(line)
        return text

    def undecodable(self, raw: bytes, line: int) -> str:
        """A line that is not text in the encoding in force: read on in a single-byte encoding when the file was
        ASCII until now, else UNDECODABLE_LINE with the reason and the line shown with replacement characters."""
        decision = self.decision
        if self.watching:
            try:
                single = decide_single_byte(raw)
            except NotText:
                pass
            else:  # ASCII until now reads the same in both: read on in the single-byte encoding
                self.switched_at = line
                self.decision = EncodingDecision(single.encoding, f"ASCII up to line {line}, then {single.why}")
                return raw.decode(single.encoding)
        try:
            raw.decode(decision.encoding)
            position = 0
        except UnicodeDecodeError as error:
            position = error.start
        byte = raw[position:position + 1].hex().upper()
        reason = (f"not {decision.name} text (byte 0x{byte} at position {position + 1}); the rest of the file is "
                  f"{decision.name}")
        payload = f"{reason}\x1f{raw.decode(decision.encoding, errors='replace').rstrip(chr(13) + chr(10))}"
        return f"{UNDECODABLE_LINE}{base64.b64encode(payload.encode()).decode()}\n"


def read_undecodable_line(field: str) -> tuple[str, str]:
    """(reason, text) of an UNDECODABLE_LINE."""
    reason, _, text = base64.b64decode(field[len(UNDECODABLE_LINE):]).decode().partition("\x1f")
    return reason, text
