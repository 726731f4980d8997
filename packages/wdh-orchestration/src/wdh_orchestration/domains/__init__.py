"""The domains served by WorkDataHub, one package each (``domains/<name>/``).

A domain package declares one :class:`~wdh_orchestration.Domain`; add it to
:data:`DOMAINS` and the platform builds its assets, checks, job and sensor.
"""

from typing import Final

from wdh_orchestration._domain import Domain
from wdh_orchestration.domains.sample import SAMPLE

__all__ = ["DOMAINS"]

DOMAINS: Final[tuple[Domain, ...]] = (SAMPLE,)
