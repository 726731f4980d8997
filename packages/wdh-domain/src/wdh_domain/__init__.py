"""wdh_domain: the WorkDataHub pipeline framework and cleansing registry.

Pure Python over pandas, pydantic and structlog, installable on its own. The public API
lives in :mod:`wdh_domain.pipelines`, :mod:`wdh_domain.cleansing` and
:mod:`wdh_domain.errors`; the most used names are re-exported here.
"""

from wdh_domain.errors import (
    DataValidationError,
    ErrorContext,
    MissingColumnsError,
    PipelineConfigError,
    WdhDomainError,
)
from wdh_domain.pipelines import (
    CheckRequiredColumnsStep,
    DataFrameStep,
    Pipeline,
    PipelineConfig,
    PipelineContext,
    PipelineResult,
    RetryConfig,
    RowTransformStep,
    StepResult,
    ValidateDataTypesStep,
    ValidateSchemaStep,
    execute_with_retry,
)

__all__ = [
    "CheckRequiredColumnsStep",
    "DataFrameStep",
    "DataValidationError",
    "ErrorContext",
    "MissingColumnsError",
    "Pipeline",
    "PipelineConfig",
    "PipelineConfigError",
    "PipelineContext",
    "PipelineResult",
    "RetryConfig",
    "RowTransformStep",
    "StepResult",
    "ValidateDataTypesStep",
    "ValidateSchemaStep",
    "WdhDomainError",
    "execute_with_retry",
]
