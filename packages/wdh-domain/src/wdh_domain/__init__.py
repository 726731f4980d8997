"""wdh_domain."""

__all__: list[str] = []
