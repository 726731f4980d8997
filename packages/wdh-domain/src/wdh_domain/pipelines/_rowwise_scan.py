"""The row-wise step's hot loop, compiled per column count, and the validator it calls.

Per row the loop builds the row's dict, calls the model's core validator and hands the
result on, with no Python function of ours called in between: the loop is one
generated function whose body holds the dict display ``{k0: a0, k1: a1, ...}``, so
cells go from the column lists to the validator without a per-row call to a row maker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

__all__ = ["Keep", "Scan", "field_dict_validator", "row_maker", "scanner"]

Scan = Callable[
    [Iterable[tuple[Any, ...]], Callable[[Any], Any], Callable[..., object], Callable[..., bool]],
    bool,
]
"""``scan(rows, validate, keep, fail) -> stopped``: validate each row (a tuple of cells);
pass what it keeps to ``keep``; on a ``ValidationError`` call ``fail(exc)``, and return
True at once when that returns True. Returns False when the rows ran out."""

# What the loop keeps of a valid row: the first item of the validator's result (a
# field-dict validator's field dict), the validated instance's field dict, or the input
# row together with the instance.
Keep = Literal["first", "dict", "row"]

_KEEP_STATEMENTS: dict[str, str] = {
    "first": "keep(validate({row})[0])",
    "dict": "keep(validate({row}).__dict__)",
    "row": "row = {row}\n            keep(row, validate(row))",
}


def _names(count: int) -> tuple[str, str, str]:
    """The loop's target, the dict display's items and the parameter list for ``count``
    cells: ``a0, a1, ...,`` (a tuple target even for one cell; ``()`` for none),
    ``k0: a0, k1: a1, ...`` and ``a0, a1, ...``."""
    cells = ", ".join(f"a{i}" for i in range(count))
    items = ", ".join(f"k{i}: a{i}" for i in range(count))
    return f"{cells}," if count else "()", items, cells


def _label_globals(labels: list[Any]) -> dict[str, Any]:
    """The labels as the generated code's globals ``k0, k1, ...``: never in its source."""
    return {f"k{i}": label for i, label in enumerate(labels)}


def row_maker(labels: list[Any]) -> Callable[..., dict[Any, Any]]:
    """A function taking one cell per column and returning the row's dict (label -> cell).

    It is the dict display ``lambda a0, a1, ...: {k0: a0, k1: a1, ...}``: Python builds
    such a literal faster than ``dict(zip(labels, cells))`` (no zip, no pair tuples).
    """
    _, items, params = _names(len(labels))
    maker: Callable[..., dict[Any, Any]] = eval(  # noqa: S307 - generated from counts only
        f"lambda {params}: {{{items}}}", _label_globals(labels)
    )
    return maker


def scanner(labels: list[Any], keep: Keep) -> Scan:
    """The :data:`Scan` loop for rows of cells under ``labels`` (one cell per label)."""
    target, items, _ = _names(len(labels))
    statement = _KEEP_STATEMENTS[keep].format(row=f"{{{items}}}")
    source = (
        "def scan(rows, validate, keep, fail):\n"
        f"    for {target} in rows:\n"
        "        try:\n"
        f"            {statement}\n"
        "        except ValidationError as exc:\n"
        "            if fail(exc):\n"
        "                return True\n"
        "    return False\n"
    )
    namespace = {**_label_globals(labels), "ValidationError": ValidationError}
    exec(source, namespace)  # noqa: S102 - generated from counts only
    scan: Scan = namespace["scan"]
    return scan


def field_dict_validator(model: type[BaseModel]) -> Callable[[Any], Any] | None:
    """A validator returning ``(field dict, extras, fields set)`` where ``model``'s own
    validator returns an instance with that ``__dict__``; None when that is not sure.

    A model's core schema is its fields' schema wrapped in a step that makes the
    instance. When the wrapper does nothing else (no custom ``__init__``, no
    ``model_post_init``, not a root model, no model validator around it, no validation
    plugin), validating the fields' schema under the model's config accepts, rejects
    and coerces exactly as the model does, with the same errors, and skips making an
    instance that the step would drop at once.
    """
    validator = model.__pydantic_validator__  # first: builds a deferred model's schema
    schema: Any = model.__pydantic_core_schema__
    if type(validator) is not SchemaValidator or not isinstance(schema, dict):
        return None  # a plugin's wrapper, or a schema that is not built
    if (
        schema.get("type") != "model"
        or schema.get("custom_init")
        or schema.get("root_model")
        or schema.get("post_init")
        or schema.get("cls") is not model
    ):
        return None
    fields = schema.get("schema")
    if not isinstance(fields, dict) or fields.get("type") != "model-fields":
        return None
    try:
        return SchemaValidator(fields, schema.get("config")).validate_python
    except Exception:  # noqa: BLE001 - e.g. references into definitions: use the model
        return None
