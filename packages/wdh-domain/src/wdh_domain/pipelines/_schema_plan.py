"""Compile a pydantic model into per-field plans for column-wise validation.

A field compiles when its type is one the column checks know (int, float, Decimal, str,
date, datetime, bool, Literal, Enum, each optionally ``| None``) and every constraint on
it is one they implement. Anything else -- a custom validator, a nested model, a
serializer, an unknown constraint, a model validator -- makes the field (or, for
model-wide features, every field) fall back to row-wise pydantic validation.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, StringConstraints, TypeAdapter

__all__ = ["FieldPlan", "Kind", "compile_model"]

Kind = Literal["int", "float", "decimal", "str", "date", "datetime", "bool", "choice"]

# Model settings that change how values validate in ways the column checks do not copy.
_UNSUPPORTED_CONFIG = (
    "strict",
    "str_to_lower",
    "str_to_upper",
    "str_min_length",
    "str_max_length",
    "coerce_numbers_to_str",
    "use_enum_values",
    "allow_inf_nan",
    "regex_engine",
    "validate_by_alias",
    "validate_by_name",
)


def _no_default() -> Any:
    return None


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one model field is checked: compiled (``kind`` set) or row-wise (``reason``)."""

    name: str
    column: str
    nullable: bool
    kind: Kind | None = None
    reason: str | None = None
    #: A list of the field's type: a column's cells are judged in one call, each error
    #: located by its index in the list.
    adapter: TypeAdapter[list[Any]] | None = None
    gt: Any = None
    ge: Any = None
    lt: Any = None
    le: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    strip: bool = False
    max_digits: int | None = None
    decimal_places: int | None = None
    choices: dict[Any, Any] = field(default_factory=dict)
    has_default: bool = False
    default: Callable[[], Any] = _no_default


def _model_wide_reason(model: type[BaseModel]) -> str | None:
    decorators = model.__pydantic_decorators__
    if decorators.model_validators:
        return "the model has a model validator"
    if decorators.model_serializers:
        return "the model has a model serializer"
    if model.__pydantic_computed_fields__:
        return "the model has computed fields"
    if model.__pydantic_root_model__:
        return "root models validate one value, not columns"
    config = model.model_config
    for key in _UNSUPPORTED_CONFIG:
        if config.get(key):
            return f"model_config sets {key}"
    return None


def _fields_with_decorators(model: type[BaseModel]) -> set[str]:
    decorators = model.__pydantic_decorators__
    names: set[str] = set()
    for group in (decorators.field_validators, decorators.field_serializers):
        for decorator in group.values():
            names.update(decorator.info.fields)
    return names


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(annotation)):
            return args[0], True
    return annotation, False


_PLAIN_KINDS: Final[dict[Any, Kind]] = {
    bool: "bool",
    int: "int",
    float: "float",
    Decimal: "decimal",
    str: "str",
    datetime: "datetime",
    date: "date",
}


def _base_kind(base: Any) -> tuple[Kind | None, dict[Any, Any]]:
    """The kind of a (non-optional) type, and the choices of a Literal or Enum."""
    if isinstance(base, type) and base in _PLAIN_KINDS:
        return _PLAIN_KINDS[base], {}
    if get_origin(base) is Literal:
        values = get_args(base)
        if all(type(value) is str for value in values):
            return "choice", {value: value for value in values}
        return None, {}
    if isinstance(base, type) and issubclass(base, enum.Enum):
        members = list(base)
        if members and all(type(member.value) is str for member in members):
            return "choice", {member.value: member for member in members}
    return None, {}


def _apply_metadata(plan: dict[str, Any], items: list[Any]) -> str | None:  # noqa: PLR0912 - one branch per constraint type
    """Copy the constraints of ``items`` into ``plan``; return why not when one is unknown."""
    for item in items:
        if isinstance(item, at.Gt):
            plan["gt"] = item.gt
        elif isinstance(item, at.Ge):
            plan["ge"] = item.ge
        elif isinstance(item, at.Lt):
            plan["lt"] = item.lt
        elif isinstance(item, at.Le):
            plan["le"] = item.le
        elif isinstance(item, at.MinLen):
            plan["min_length"] = item.min_length
        elif isinstance(item, at.MaxLen):
            plan["max_length"] = item.max_length
        elif isinstance(item, StringConstraints):
            if item.to_upper or item.to_lower or item.strict or item.ascii_only:
                return "StringConstraints with to_upper/to_lower/strict/ascii_only"
            if item.strip_whitespace:
                plan["strip"] = True
            if item.min_length is not None:
                plan["min_length"] = item.min_length
            if item.max_length is not None:
                plan["max_length"] = item.max_length
            if item.pattern is not None:
                if not isinstance(item.pattern, str):
                    return "a compiled pattern"
                plan["pattern"] = item.pattern
        elif type(item).__name__ == "_PydanticGeneralMetadata":
            settings = {k: v for k, v in vars(item).items() if v is not None}
            unknown = set(settings) - {"max_digits", "decimal_places"}
            if unknown:
                return f"constraint(s) {', '.join(sorted(unknown))}"
            plan.update(settings)
        else:
            return f"constraint {item!r}"
    return None


def _plan_field(  # noqa: PLR0911 - one early return per reason to fall back
    name: str, info: Any, config: Any, decorated: set[str], model_reason: str | None
) -> FieldPlan:
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if alias is not None and not isinstance(alias, str):
        return FieldPlan(name=name, column=name, nullable=False, reason="an AliasPath/AliasChoices")
    column = alias if alias is not None else name
    if model_reason is not None:
        return FieldPlan(name=name, column=column, nullable=False, reason=model_reason)
    if name in decorated or "*" in decorated:
        return FieldPlan(name=name, column=column, nullable=False, reason="a custom validator")
    if info.exclude:
        return FieldPlan(name=name, column=column, nullable=False, reason="excluded from dumps")
    base, nullable = _split_optional(info.annotation)
    extra: list[Any] = []
    if get_origin(base) is Annotated:
        base, *extra = get_args(base)
    kind, choices = _base_kind(base)
    if kind is None:
        return FieldPlan(name=name, column=column, nullable=nullable, reason=f"type {base!r}")
    metadata = [*info.metadata, *extra]
    plan: dict[str, Any] = {"strip": kind == "str" and bool(config.get("str_strip_whitespace"))}
    unknown = _apply_metadata(plan, metadata)
    if unknown is not None:
        return FieldPlan(name=name, column=column, nullable=nullable, reason=unknown)
    adapter_config = {"str_strip_whitespace": True} if config.get("str_strip_whitespace") else None
    annotated = Annotated[base, *metadata] if metadata else base
    adapter: TypeAdapter[list[Any]] = TypeAdapter(
        list[annotated],  # type: ignore[valid-type]
        config=adapter_config,  # type: ignore[arg-type]
    )
    return FieldPlan(
        name=name,
        column=column,
        nullable=nullable,
        kind=kind,
        adapter=adapter,
        choices=choices,
        has_default=not info.is_required(),
        default=partial(info.get_default, call_default_factory=True),
        **plan,
    )


def compile_model(model: type[BaseModel]) -> list[FieldPlan]:
    """One plan per model field, in the model's field order."""
    model_reason = _model_wide_reason(model)
    decorated = _fields_with_decorators(model)
    return [
        _plan_field(name, info, model.model_config, decorated, model_reason)
        for name, info in model.model_fields.items()
    ]
