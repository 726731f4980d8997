"""The audit trail of pipeline runs (``pipeline_executions``, ``data_quality_metrics``)."""

from wdh_io.audit._recorder import MAX_ERROR_MESSAGE_LENGTH, AuditRecorder, FinalStatus

__all__ = ["MAX_ERROR_MESSAGE_LENGTH", "AuditRecorder", "FinalStatus"]
