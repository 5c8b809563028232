"""Catalogs: every message of the key desk and reception pages is translated to Swedish and
Norwegian Bokmål, and the compiled catalogs match their sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from gateway.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"
PAGES = ("keydesk.html", "_desk.html", "reception.html")


def _messages(name: str) -> set[str]:
    return {
        str(msg)
        for _, msg, _, _ in extract_from_file("jinja2", str(TEMPLATES / name))
        if isinstance(msg, str)
    }


@pytest.mark.parametrize("language", ["sv", "nb"])
def test_key_desk_and_reception_are_translated(language: str) -> None:
    po = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    tr = i18n.translations(language)
    for page in PAGES:
        for message in _messages(page):
            entry = catalog.get(message)
            assert entry is not None and entry.string, f"{language}: {page}: {message!r}"
            assert tr.gettext(message) == entry.string, f"{language}: .mo older than .po"


def test_language_choice() -> None:
    assert i18n.choose(None, "nb-NO,nb;q=0.9,en;q=0.5") == "nb"
    assert i18n.choose(None, "no") == "nb"
    assert i18n.choose(None, "de, sv;q=0.3") == "sv"
    assert i18n.choose("en", "sv") == "en"
    assert i18n.choose(None, None) == "en"
