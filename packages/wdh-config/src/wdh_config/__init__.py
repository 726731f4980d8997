"""wdh_config."""

__all__: list[str] = []
