"""Bounding the size of text copied into error context and log lines."""

from __future__ import annotations

__all__ = ["truncate"]


def truncate(text: str, max_chars: int) -> str:
    """Return ``text`` cut to at most ``max_chars`` characters, marked with ``...``."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 3:
        return text[:max_chars]
    return f"{text[: max_chars - 3]}..."
