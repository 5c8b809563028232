"""Translations of the console (gettext catalogs compiled with Babel) and the choice of
language: the operator's choice in the session, else the browser's Accept-Language."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from babel.support import NullTranslations, Translations

LOCALE_DIR: Final = Path(__file__).parent / "locale"
LANGUAGES: Final[dict[str, str]] = {"en": "English", "sv": "Svenska", "nb": "Norsk bokmål"}
DEFAULT: Final = "en"
_ALIASES: Final = {"no": "nb", "nn": "nb"}


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalog of ``language`` (English: the messages as written)."""
    if language == DEFAULT:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], domain="messages")


def choose(preferred: str | None, accept_language: str | None) -> str:
    """The language to show: ``preferred`` if offered, else the best of Accept-Language."""
    if preferred in LANGUAGES:
        return preferred
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        base = tag.strip().lower().split("-")[0]
        base = _ALIASES.get(base, base)
        if base in LANGUAGES and q > 0:
            ranked.append((-q, i, base))
    return sorted(ranked)[0][2] if ranked else DEFAULT


__all__ = ["DEFAULT", "LANGUAGES", "LOCALE_DIR", "choose", "translations"]
