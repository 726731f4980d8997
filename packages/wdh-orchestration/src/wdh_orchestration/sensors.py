"""Sensors of the WorkDataHub jobs: none yet, by design.

File-arrival and run-status sensors arrive with Epic 7. The composition root already
passes :data:`SENSORS` to ``Definitions``, so adding a sensor is a change to this module
only.
"""

from __future__ import annotations

from typing import Final

from dagster import SensorDefinition

__all__ = ["SENSORS"]

SENSORS: Final[list[SensorDefinition]] = []
