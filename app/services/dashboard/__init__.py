"""The clinic's dashboard (/staff/dashboard): facts rolled up by the worker into monthly
figures (rollup.py), read a year at a time with the opportunities they point to
(figures.py), and the follow-up of invited patients who have not joined (follow_up.py)."""

from __future__ import annotations

from datetime import date

from app.services.dashboard.follow_up import follow_up_figures_refresh
from app.services.dashboard.rollup import dashboard_rollup


async def dashboard_refresh(*, months: int = 13, today: date | None = None) -> int:
    """The worker's duty: the figures of the last months, and the follow-up count."""
    written = await dashboard_rollup(months=months, today=today)
    await follow_up_figures_refresh()
    return written
