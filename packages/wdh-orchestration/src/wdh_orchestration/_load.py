"""The error a load raises when one of the domain's blocking checks fails."""

from __future__ import annotations

from wdh_orchestration._domain import CheckOutcome, DomainCheck

__all__ = ["BlockingCheckFailedError"]


class BlockingCheckFailedError(Exception):
    """A blocking check failed, so the load was rolled back; ``outcomes`` has them all."""

    def __init__(self, outcomes: list[tuple[DomainCheck, CheckOutcome]]) -> None:
        self.outcomes = outcomes
        failed = [f"{c.name}: {o.description}" for c, o in outcomes if c.blocking and not o.passed]
        super().__init__("check failed, nothing was loaded: " + "; ".join(failed))
