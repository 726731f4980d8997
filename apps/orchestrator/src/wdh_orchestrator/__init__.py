"""wdh_orchestrator."""

__all__: list[str] = []
