"""Built-in cleansing rules, registered in the default registry.

Legacy source files (often GBK-encoded spreadsheets) bring full-width characters,
padding, thousands separators and placeholder strings for "no value"; these rules
clean exactly that and leave other values alone.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from wdh_domain.cleansing._registry import CleansingRegistry

__all__ = [
    "EMPTY_MARKERS",
    "empty_to_none",
    "normalize_width",
    "register_builtin_rules",
    "remove_thousands_separators",
    "strip_whitespace",
]

EMPTY_MARKERS = frozenset({"", "-", "--", "n/a", "na", "null", "none", "nan"})

_NUMBER_WITH_SEPARATORS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def strip_whitespace(value: Any) -> Any:
    """Strip leading and trailing whitespace (full-width spaces included) from text."""
    if isinstance(value, str):
        return value.strip()
    return value


def empty_to_none(value: Any) -> Any:
    """Turn blank text and placeholders ("-", "N/A", "null", ...) into None."""
    if isinstance(value, str) and value.strip().lower() in EMPTY_MARKERS:
        return None
    return value


def normalize_width(value: Any) -> Any:
    """Fold full-width letters, digits and punctuation to their ASCII forms (NFKC)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFKC", value)
    return value


def remove_thousands_separators(value: Any) -> Any:
    """Remove "," thousands separators from numeric text ("1,234.50" -> "1234.50")."""
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_WITH_SEPARATORS.match(text):
            return text.replace(",", "")
    return value


def register_builtin_rules(registry: CleansingRegistry) -> None:
    """Register the built-in rules in ``registry``."""
    registry.register("strip_whitespace", strip_whitespace)
    registry.register("empty_to_none", empty_to_none)
    registry.register("normalize_width", normalize_width)
    registry.register("remove_thousands_separators", remove_thousands_separators)
