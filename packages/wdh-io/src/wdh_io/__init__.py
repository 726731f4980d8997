"""wdh_io."""

__all__: list[str] = []
