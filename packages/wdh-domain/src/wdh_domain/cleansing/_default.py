"""The default registry, pre-loaded with the built-in rules, and shortcuts to it."""

from __future__ import annotations

from typing import Any

from wdh_domain.cleansing._registry import CleansingRegistry, CleansingRule, RuleFunc
from wdh_domain.cleansing._rules import register_builtin_rules

__all__ = ["apply_rule", "default_registry", "get_rule", "list_rules", "register_rule"]

default_registry = CleansingRegistry()
register_builtin_rules(default_registry)


def register_rule(name: str, func: RuleFunc, *, description: str | None = None) -> CleansingRule:
    """Register a rule in the default registry (duplicate names are rejected)."""
    return default_registry.register(name, func, description=description)


def get_rule(name: str) -> CleansingRule:
    """Look a rule up in the default registry."""
    return default_registry.get(name)


def list_rules() -> list[CleansingRule]:
    """List the default registry's rules, sorted by name."""
    return default_registry.list_rules()


def apply_rule(name: str, value: Any) -> Any:
    """Clean ``value`` with the default registry's rule ``name``."""
    return default_registry.apply(name, value)
