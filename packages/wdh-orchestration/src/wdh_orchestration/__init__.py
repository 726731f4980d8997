"""wdh_orchestration."""

__all__: list[str] = []
