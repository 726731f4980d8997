"""The WorkDataHub pipeline framework (stories 1.5 and 1.10).

A :class:`Pipeline` runs :class:`DataFrameStep` (whole frame) and
:class:`RowTransformStep` (one row at a time) steps in order and returns a
:class:`PipelineResult`: the output frame, the failed rows with structured error
context, warnings and metrics. See the package README for a complete example.
"""

from wdh_domain.errors import (
    DataValidationError,
    ErrorContext,
    MissingColumnsError,
    PipelineConfigError,
    PipelineFailedError,
    PipelineInputError,
    WdhDomainError,
)
from wdh_domain.pipelines._config import PipelineConfig
from wdh_domain.pipelines._core import Pipeline, PipelineBuilder
from wdh_domain.pipelines._ids import new_execution_id
from wdh_domain.pipelines._metrics import PipelineMetrics, StepMetrics, StepStatus, StepType
from wdh_domain.pipelines._result import ROW_ERRORS_SHOWN, FailedRow, PipelineResult
from wdh_domain.pipelines._retry import DEFAULT_RETRIABLE_ERRORS, RetryConfig, execute_with_retry
from wdh_domain.pipelines._steps import CheckRequiredColumnsStep, ValidateDataTypesStep
from wdh_domain.pipelines._types import (
    DataFrameStep,
    PipelineContext,
    Row,
    RowIssue,
    RowTransformStep,
    StepResult,
)

__all__ = [
    "DEFAULT_RETRIABLE_ERRORS",
    "ROW_ERRORS_SHOWN",
    "CheckRequiredColumnsStep",
    "DataFrameStep",
    "DataValidationError",
    "ErrorContext",
    "FailedRow",
    "MissingColumnsError",
    "Pipeline",
    "PipelineBuilder",
    "PipelineConfig",
    "PipelineConfigError",
    "PipelineContext",
    "PipelineFailedError",
    "PipelineInputError",
    "PipelineMetrics",
    "PipelineResult",
    "RetryConfig",
    "Row",
    "RowIssue",
    "RowTransformStep",
    "StepMetrics",
    "StepResult",
    "StepStatus",
    "StepType",
    "ValidateDataTypesStep",
    "WdhDomainError",
    "execute_with_retry",
    "new_execution_id",
]
