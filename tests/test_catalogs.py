"""Every text the code can show is in the catalogs: Vietnamese translated, English present,
and each translation keeps the msgid's {placeholders}."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"N_": None, "t": None, "plural": (1, 2)}
# The dashboard's templates (Jinja2) call _() and ngettext(), as babel.cfg extracts them.
TEMPLATE_KEYWORDS = {"_": None, "ngettext": (1, 2)}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
PLACEHOLDER = re.compile(r"{(\w*)}")


def _extracted() -> set[str]:
    ids: set[str] = set()
    for folder in ("bot", "storage"):
        for _file, _line, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=METHODS, keywords={**KEYWORDS, **TEMPLATE_KEYWORDS}):
            ids.add(message[0] if isinstance(message, tuple) else message)
    return {msgid for msgid in ids if msgid}


def _catalog(locale: str) -> Catalog:
    with open(ROOT / "locales" / locale / "LC_MESSAGES" / "coso.po", "rb") as file:
        return read_po(file)


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_text_is_in_the_catalog(locale: str) -> None:
    catalog = _catalog(locale)
    missing = sorted(msgid for msgid in _extracted() if msgid not in catalog)
    assert not missing, f"run `make i18n-extract` and translate: {missing[:10]}"


def test_vietnamese_is_complete_and_keeps_placeholders() -> None:
    catalog = _catalog("vi")
    problems = []
    for message in catalog:
        if not message.id:
            continue
        singular = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings) or message.fuzzy:
            problems.append(f"untranslated: {singular!r}")
            continue
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(singular)):
                problems.append(f"placeholders differ: {singular!r}")
    assert not problems, "\n".join(problems[:20])
