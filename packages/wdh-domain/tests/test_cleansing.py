"""Cleansing registry: register, look up, list, reject duplicates, apply to columns."""

from __future__ import annotations

import pandas as pd
import pytest

from wdh_domain import cleansing
from wdh_domain.cleansing import (
    ApplyCleansingRulesStep,
    CleansingRegistry,
    apply_rule,
    get_rule,
    list_rules,
    register_rule,
)
from wdh_domain.errors import (
    CleansingRuleError,
    DuplicateRuleError,
    PipelineConfigError,
    UnknownRuleError,
)
from wdh_domain.pipelines import Pipeline

pytestmark = pytest.mark.unit


def test_register_lookup_and_list() -> None:
    registry = CleansingRegistry()

    @registry.rule("upper")
    def upper(value: object) -> object:
        """Upper-case text."""
        return value.upper() if isinstance(value, str) else value

    registry.register("lower", str.lower, description="lower-case")

    assert registry.names() == ["lower", "upper"]
    assert [rule.name for rule in registry.list_rules()] == ["lower", "upper"]
    assert registry.get("upper").description == "Upper-case text."
    assert registry.apply("upper", "abc") == "ABC"
    assert registry.apply("upper", 3) == 3
    assert "upper" in registry
    assert len(registry) == 2
    assert [rule.name for rule in registry] == ["lower", "upper"]
    assert upper("x") == "X"


def test_duplicate_names_are_rejected() -> None:
    registry = CleansingRegistry()
    registry.register("trim", str.strip)

    with pytest.raises(DuplicateRuleError, match="Cleansing rule 'trim' is already registered"):
        registry.register("trim", str.lstrip)

    assert registry.get("trim").func is str.strip


def test_unknown_and_invalid_rules() -> None:
    registry = CleansingRegistry()
    registry.register("b", str.strip)

    with pytest.raises(UnknownRuleError, match="No cleansing rule named 'a'; registered: b"):
        registry.get("a")
    with pytest.raises(UnknownRuleError, match="registered: \\(none\\)"):
        CleansingRegistry().get("a")
    with pytest.raises(CleansingRuleError, match="must be a non-empty string"):
        registry.register("", str.strip)
    with pytest.raises(CleansingRuleError, match="must be callable"):
        registry.register("x", "not callable")  # type: ignore[arg-type]
    registry.unregister("b")
    assert "b" not in registry
    with pytest.raises(UnknownRuleError):
        registry.unregister("b")


def test_builtin_rules() -> None:
    names = [rule.name for rule in list_rules()]

    assert {"strip_whitespace", "empty_to_none", "normalize_width"} <= set(names)
    assert apply_rule("strip_whitespace", "\u3000 abc \t") == "abc"
    assert apply_rule("empty_to_none", " N/A ") is None
    assert apply_rule("empty_to_none", "value") == "value"
    assert apply_rule("normalize_width", "\uff21\uff22\uff23\uff11\uff12\uff13") == "ABC123"
    assert apply_rule("remove_thousands_separators", "1,234,567.50") == "1234567.50"
    assert apply_rule("remove_thousands_separators", "12,34") == "12,34"
    assert get_rule("strip_whitespace")(5) == 5
    assert cleansing.empty_to_none(None) is None
    assert cleansing.normalize_width(1) == 1
    assert cleansing.remove_thousands_separators(1.5) == 1.5


def test_default_registry_rejects_duplicates_of_builtins() -> None:
    with pytest.raises(DuplicateRuleError):
        register_rule("strip_whitespace", str.strip)


def test_apply_cleansing_rules_step_in_a_pipeline() -> None:
    registry = CleansingRegistry()
    cleansing.register_builtin_rules(registry)
    df = pd.DataFrame(
        {"name": ["  \uff41\uff42 ", "-", "c"], "amount": ["1,000", "2", "3"], "n": [1, 2, 3]}
    )
    step = ApplyCleansingRulesStep(
        {
            "name": ["normalize_width", "strip_whitespace", "empty_to_none"],
            "amount": "remove_thousands_separators",
        },
        registry=registry,
    )

    result = Pipeline("p").add_step(step).run(df)

    assert result.output_data["name"].tolist()[0] == "ab"
    assert pd.isna(result.output_data["name"].tolist()[1])
    assert result.output_data["amount"].tolist() == ["1000", "2", "3"]
    assert df["name"].tolist()[0] == "  \uff41\uff42 "


def test_apply_cleansing_rules_step_errors() -> None:
    with pytest.raises(UnknownRuleError):
        ApplyCleansingRulesStep({"a": ["no_such_rule"]})
    with pytest.raises(PipelineConfigError, match="at least one column"):
        ApplyCleansingRulesStep({})

    result = (
        Pipeline("p")
        .add_step(ApplyCleansingRulesStep({"a": ["strip_whitespace"]}))
        .run(pd.DataFrame({"b": [1]}))
    )
    assert "Missing required column(s): a; columns present: b" in result.error_messages()[0]


@pytest.mark.parametrize("name", [" trim", "trim ", "\ttrim\n"])
def test_names_with_surrounding_whitespace_are_rejected(name: str) -> None:
    registry = CleansingRegistry()

    with pytest.raises(CleansingRuleError, match="leading or trailing whitespace; write 'trim'"):
        registry.register(name, str.strip)

    assert len(registry) == 0


def test_names_differing_only_by_case_are_duplicates() -> None:
    registry = CleansingRegistry()
    registry.register("strip_Whitespace", str.strip)

    with pytest.raises(
        DuplicateRuleError,
        match="'STRIP_WHITESPACE' differs only by case from the registered rule 'strip_Whitespace'",
    ):
        registry.register("STRIP_WHITESPACE", str.strip)

    assert registry.names() == ["strip_Whitespace"]


def test_apply_cleansing_rules_step_with_non_string_column_labels() -> None:
    frame = pd.DataFrame({0: ["  a ", " b"], 1: ["x", "y"], "name": [" n ", "m"]})
    step = ApplyCleansingRulesStep({0: ["strip_whitespace"], "name": "strip_whitespace"})

    result = Pipeline("p").add_step(step).run(frame)

    assert result.success, result.error_messages()
    assert result.output_data[0].tolist() == ["a", "b"]
    assert result.output_data["name"].tolist() == ["n", "m"]
    assert result.output_data[1].tolist() == ["x", "y"]
    assert frame[0].tolist() == ["  a ", " b"]  # the input frame is not modified
    missing = Pipeline("p").add_step(ApplyCleansingRulesStep({7: ["strip_whitespace"]}))
    assert "Missing required column(s): 7" in missing.run(frame).error_messages()[0]
