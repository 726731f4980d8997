"""wdh_logging."""

__all__: list[str] = []
