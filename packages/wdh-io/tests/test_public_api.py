"""The public surface of wdh_io: sorted exports (ruff's RUF022 order) that all resolve."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "module", ["wdh_io", "wdh_io.database", "wdh_io.audit", "wdh_io.readers", "wdh_io.schema"]
)
def test_all_is_sorted_and_resolves(module: str) -> None:
    imported = importlib.import_module(module)
    names = list(imported.__all__)
    # ruff RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert getattr(imported, name) is not None


def test_unknown_top_level_names_raise_attribute_error() -> None:
    import wdh_io

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = wdh_io.nope
