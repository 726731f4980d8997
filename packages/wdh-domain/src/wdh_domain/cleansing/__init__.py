"""Cleansing registry: named, reusable value-cleaning rules.

``default_registry`` comes with the built-in rules ``strip_whitespace``,
``empty_to_none``, ``normalize_width`` and ``remove_thousands_separators``; domains add
their own with :func:`register_rule` (or ``@default_registry.rule("name")``) and apply
them to columns with :class:`ApplyCleansingRulesStep`. Separate
:class:`CleansingRegistry` instances keep rule sets apart (e.g. per domain or in tests).
"""

from wdh_domain.cleansing._default import (
    apply_rule,
    default_registry,
    get_rule,
    list_rules,
    register_rule,
)
from wdh_domain.cleansing._registry import CleansingRegistry, CleansingRule, RuleFunc
from wdh_domain.cleansing._rules import (
    EMPTY_MARKERS,
    empty_to_none,
    normalize_width,
    register_builtin_rules,
    remove_thousands_separators,
    strip_whitespace,
)
from wdh_domain.cleansing._step import ApplyCleansingRulesStep

__all__ = [
    "EMPTY_MARKERS",
    "ApplyCleansingRulesStep",
    "CleansingRegistry",
    "CleansingRule",
    "RuleFunc",
    "apply_rule",
    "default_registry",
    "empty_to_none",
    "get_rule",
    "list_rules",
    "normalize_width",
    "register_builtin_rules",
    "register_rule",
    "remove_thousands_separators",
    "strip_whitespace",
]
