"""``get_settings()``: the process-wide, lazily built `Settings` instance."""

from __future__ import annotations

from functools import lru_cache

from wdh_config._settings import Settings

__all__ = ["get_settings"]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's `Settings`, built from the environment on the first call.

    Later calls return the same instance. Tests that change the environment call
    ``get_settings.cache_clear()`` before (and after) so the next call reads it again.

    Raises:
        pydantic.ValidationError: the environment holds a missing or invalid setting
            (the error is not cached; the next call tries again).
    """
    return Settings()
