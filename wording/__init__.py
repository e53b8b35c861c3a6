"""Text as people type it, shared by bot/ and storage/ (which imports nothing of bot/).

NFC with tidy spaces, a folded form for matching (Vietnamese without diacritics matches with
them), and N_, the marker of a text translated later for one person.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
# Zero-width and bidi control characters carry no meaning in a report and break matching;
# other control characters (NUL, ESC...) neither, and PostgreSQL refuses NUL in text.
_INVISIBLE = dict.fromkeys(
    [*map(ord, "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
               "\u2066\u2067\u2068\u2069\ufeff"),
     *range(0x00, 0x09), *range(0x0e, 0x1c), 0x7f, *range(0x80, 0x85), *range(0x86, 0xa0)]
)


def normalize(text: str) -> str:
    """NFC, invisible controls removed, runs of white space collapsed, ends trimmed."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


def normalize_multiline(text: str) -> str:
    """Like normalize, but keeps line breaks (for notes and directives)."""
    lines = (normalize(line) for line in text.replace("\r\n", "\n").split("\n"))
    return "\n".join(lines).strip()


def fold(text: str) -> str:
    """Case- and diacritic-free form: 'Không' and 'khong' fold alike; 'Đ' folds to 'd'."""
    decomposed = unicodedata.normalize("NFD", normalize(text).casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.replace("đ", "d")


def typed_answer(text: str) -> str:
    """A typed answer folded for matching an option: a full stop or spaces around it go."""
    return fold(text).strip(" .!")


def within(wanted: str, label: str, *, stretch: bool = True) -> bool:
    """Whether a folded answer is part of a folded label: a stretch of it ("ben thanh" in
    "phuong ben thanh"; not with stretch=False), or two words or more found in it in order,
    the words between left out ("khong thay doi" in "hom nay khong co gi thay doi")."""
    if not wanted:
        return False
    if stretch and wanted in label:
        return True
    words = wanted.split()
    if len(words) < 2:
        return False
    rest = iter(label.split())
    return all(word in rest for word in words)


def name_order(name: str) -> tuple[str, str]:
    """A sort key for people's names as a Vietnamese reader orders them: Đặng with the D's,
    not after Võ where the database's code-point order puts it; ties by the name itself."""
    return fold(name), name


def N_(msgid: str) -> str:  # noqa: N802 - the conventional gettext_noop name, known to pybabel
    """Mark a text for extraction; it is translated later, for one person (bot.i18n)."""
    return msgid


def post_title(label: str, unit_name: str) -> str | None:
    """A post named with its unit as Vietnamese writes it: 'Tổ trưởng tổ dân phố' on 'Tổ dân
    phố 1' is 'Tổ trưởng tổ dân phố 1', 'Trưởng khu phố / Trưởng ấp' on 'Ấp 3' is 'Trưởng ấp
    3' (the alternative that names the unit's kind). None when no alternative of the label
    ends with the words the unit's name begins with ('Bí thư chi bộ' on 'Khu phố 1')."""
    unit_words = normalize(unit_name).split(" ")
    folded_unit = [fold(word) for word in unit_words]
    for alternative in (normalize(part) for part in label.split("/")):
        words = alternative.split(" ")
        folded = [fold(word) for word in words]
        for size in range(min(len(words), len(unit_words) - 1), 0, -1):
            if folded[-size:] == folded_unit[:size]:
                return " ".join([*words, *unit_words[size:]])
    return None
