"""The name of the column that carries each row's input position through a pipeline."""

from __future__ import annotations

from typing import Final

__all__ = ["ROW_COLUMN"]

ROW_COLUMN: Final = "__wdh_row__"
"""DataFrame steps see it (see ``wdh_domain.pipelines``); users never name it, so error
messages that list a frame's columns leave it out."""
