"""Schedules of the WorkDataHub jobs: none yet, by design.

Jobs are launched by hand (UI or CLI) in Epic 1; scheduled runs arrive with Epic 7.
The composition root already passes :data:`SCHEDULES` to ``Definitions``, so adding a
schedule is a change to this module only.
"""

from __future__ import annotations

from typing import Final

from dagster import ScheduleDefinition

__all__ = ["SCHEDULES"]

SCHEDULES: Final[list[ScheduleDefinition]] = []
