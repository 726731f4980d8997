"""A registry of named cleansing rules (value -> cleaned value)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from wdh_domain.errors import CleansingRuleError, DuplicateRuleError, UnknownRuleError

__all__ = ["CleansingRegistry", "CleansingRule", "RuleFunc"]

RuleFunc = Callable[[Any], Any]
F = TypeVar("F", bound=RuleFunc)


@dataclass(frozen=True, slots=True)
class CleansingRule:
    """A named, documented function that cleans one value.

    Rules must accept any value and return it unchanged when it is not theirs to clean
    (``None``, a number for a text rule, ...), so they can run over whole columns.
    """

    name: str
    func: RuleFunc
    description: str = ""

    def __call__(self, value: Any) -> Any:
        return self.func(value)


class CleansingRegistry:
    """Register, look up and list cleansing rules by name; duplicate names are rejected.

    Thread-safe. Names must be non-empty, without leading or trailing whitespace, and
    unique ignoring case (``Trim`` cannot join ``trim``); lookups are exact.
    """

    def __init__(self) -> None:
        self._rules: dict[str, CleansingRule] = {}
        self._lock = threading.Lock()

    def register(
        self, name: str, func: RuleFunc, *, description: str | None = None
    ) -> CleansingRule:
        """Register ``func`` under ``name`` and return the rule.

        ``description`` defaults to the first line of the function's docstring. Raises
        :class:`~wdh_domain.errors.DuplicateRuleError` when ``name`` is taken and
        :class:`~wdh_domain.errors.CleansingRuleError` for an empty name or a
        non-callable ``func``.
        """
        candidate: object = name  # callers without type checking may pass anything
        if not isinstance(candidate, str) or not candidate.strip():
            raise CleansingRuleError(
                f"Cleansing rule name must be a non-empty string, got {name!r}",
                operation="register",
            )
        if candidate != candidate.strip():
            raise CleansingRuleError(
                f"Cleansing rule name {name!r} has leading or trailing whitespace; "
                f"write {candidate.strip()!r}",
                operation="register",
            )
        if not callable(func):
            raise CleansingRuleError(
                f"Cleansing rule '{name}' must be callable, got {type(func).__name__}",
                operation="register",
            )
        if description is None:
            doc = (getattr(func, "__doc__", None) or "").strip()
            description = doc.splitlines()[0] if doc else ""
        rule = CleansingRule(name=name, func=func, description=description)
        with self._lock:
            if name in self._rules:
                raise DuplicateRuleError(
                    f"Cleansing rule '{name}' is already registered", operation="register"
                )
            folded = name.casefold()
            clash = next((known for known in self._rules if known.casefold() == folded), None)
            if clash is not None:
                raise DuplicateRuleError(
                    f"Cleansing rule '{name}' differs only by case from the registered "
                    f"rule '{clash}'",
                    operation="register",
                )
            self._rules[name] = rule
        return rule

    def rule(self, name: str, *, description: str | None = None) -> Callable[[F], F]:
        """Decorator form of :meth:`register`; returns the function unchanged."""

        def decorate(func: F) -> F:
            self.register(name, func, description=description)
            return func

        return decorate

    def get(self, name: str) -> CleansingRule:
        """Return the rule named ``name``; :class:`UnknownRuleError` lists the known names."""
        try:
            return self._rules[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownRuleError(
                f"No cleansing rule named '{name}'; registered: {known}", operation="get"
            ) from None

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._rules)

    def list_rules(self) -> list[CleansingRule]:
        """Return the registered rules, sorted by name."""
        return [self._rules[name] for name in self.names()]

    def apply(self, name: str, value: Any) -> Any:
        """Clean ``value`` with the rule named ``name``."""
        return self.get(name)(value)

    def unregister(self, name: str) -> None:
        """Remove a rule (mainly for tests); unknown names raise :class:`UnknownRuleError`."""
        with self._lock:
            if name not in self._rules:
                raise UnknownRuleError(f"No cleansing rule named '{name}'", operation="unregister")
            del self._rules[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[CleansingRule]:
        return iter(self.list_rules())

    def __len__(self) -> int:
        return len(self._rules)
