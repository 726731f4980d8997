"""The WorkDataHub pipeline framework.

A :class:`Pipeline` runs :class:`DataFrameStep` (whole frame), :class:`ValidationStep`
(whole frame, rejects rows: :class:`ValidateSchemaStep`) and :class:`RowTransformStep`
(one row at a time) steps in order and returns a :class:`PipelineResult`: the output
frame, the failed rows, the errors and warnings as tables, and metrics. See the package
README for a complete example.
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
from wdh_domain.pipelines._core import Pipeline
from wdh_domain.pipelines._ids import new_execution_id
from wdh_domain.pipelines._issues import ISSUE_COLUMNS
from wdh_domain.pipelines._metrics import PipelineMetrics, StepMetrics, StepStatus, StepType
from wdh_domain.pipelines._result import (
    FAILED_ROW_COLUMNS,
    ROW_ERRORS_SHOWN,
    PipelineResult,
    format_issues,
)
from wdh_domain.pipelines._retry import DEFAULT_RETRIABLE_ERRORS, RetryConfig, execute_with_retry
from wdh_domain.pipelines._rowwise_step import ValidateDataTypesStep, model_input_rows
from wdh_domain.pipelines._runner import ROW_COLUMN
from wdh_domain.pipelines._schema_step import ERROR_COLUMNS, SchemaValidation, ValidateSchemaStep
from wdh_domain.pipelines._steps import CheckRequiredColumnsStep
from wdh_domain.pipelines._types import (
    DataFrameStep,
    PipelineContext,
    Row,
    RowIssue,
    RowTransformStep,
    StepResult,
    ValidationStep,
)

__all__ = [
    "DEFAULT_RETRIABLE_ERRORS",
    "ERROR_COLUMNS",
    "FAILED_ROW_COLUMNS",
    "ISSUE_COLUMNS",
    "ROW_COLUMN",
    "ROW_ERRORS_SHOWN",
    "CheckRequiredColumnsStep",
    "DataFrameStep",
    "DataValidationError",
    "ErrorContext",
    "MissingColumnsError",
    "Pipeline",
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
    "SchemaValidation",
    "StepMetrics",
    "StepResult",
    "StepStatus",
    "StepType",
    "ValidateDataTypesStep",
    "ValidateSchemaStep",
    "ValidationStep",
    "WdhDomainError",
    "execute_with_retry",
    "format_issues",
    "model_input_rows",
    "new_execution_id",
]
