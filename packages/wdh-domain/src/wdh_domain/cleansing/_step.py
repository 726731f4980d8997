"""A DataFrame step that applies registered cleansing rules to columns."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from wdh_domain.cleansing._default import default_registry
from wdh_domain.cleansing._registry import CleansingRegistry, CleansingRule
from wdh_domain.errors import MissingColumnsError, PipelineConfigError
from wdh_domain.pipelines import PipelineContext

__all__ = ["ApplyCleansingRulesStep"]


class ApplyCleansingRulesStep:
    """DataFrame step: clean columns with named rules, in the order given.

    ``rules`` maps a column to rule names, e.g.
    ``{"name": ["strip_whitespace", "empty_to_none"]}``; column labels may be any
    hashable (``0``, ``("a", "b")``), not only strings. Names are resolved when the
    step is built (an unknown name fails at once). Only the named columns are replaced;
    a named column missing from the frame raises
    :class:`~wdh_domain.errors.MissingColumnsError`.
    """

    def __init__(
        self,
        rules: Mapping[Any, Sequence[str] | str],
        *,
        registry: CleansingRegistry | None = None,
        name: str | None = None,
    ) -> None:
        source = registry if registry is not None else default_registry
        if not rules:
            raise PipelineConfigError("rules must name at least one column", field="rules")
        resolved: dict[Hashable, tuple[CleansingRule, ...]] = {}
        for column, names in rules.items():
            rule_names = [names] if isinstance(names, str) else list(names)
            resolved[column] = tuple(source.get(rule_name) for rule_name in rule_names)
        self.rules = resolved
        self.name = name or type(self).__name__

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        """Return a frame with the named columns cleaned (other columns are shared)."""
        missing = [column for column in self.rules if column not in df.columns]
        if missing:
            raise MissingColumnsError(
                [str(column) for column in missing],
                list(df.columns),
                operation=self.name,
                domain=context.domain,
            )
        # Column by column on a shallow copy (not df.assign(**...), which needs string
        # labels): the columns not named here are shared with ``df``, not copied.
        out = df.copy(deep=False)
        for column, rules in self.rules.items():
            values = df[column].tolist()
            for rule in rules:
                values = [rule.func(value) for value in values]
            out[column] = pd.Series(values, index=df.index, name=column)
        return out
