"""Counting deadline time in Asia/Jakarta, in calendar days or in working days.

A deadline is a budget of *clock time*: "6 days" is 6 × 24 hours of it. In calendar mode every
hour counts. In working-day mode only the hours of working days count: Monday to Friday, not an
Indonesian national holiday (the ``holidays`` package) and not a day the city declared off (cuti
bersama, maintained by admins). Days are whole days in WIB, midnight to midnight.

So a report filed on Friday at 16:00 before a weekend and a Monday holiday, with "6 working days",
has Friday's last 8 hours, then Tuesday to the next Monday (five days), then 16 hours of the
next Tuesday: it is due that Tuesday at 16:00. A report filed on a Saturday starts counting on
Monday at 00:00. This reads the rule the way a citizen would ("six working days after I
reported"), needs no notion of office hours, and gives every instant a unique due time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache

import holidays

from siskamling.core.time import WIB

DAY = timedelta(days=1)
_MAX_DAYS = 3 * 366  # a deadline further than this is a configuration error, not a plan


class Mode(StrEnum):
    calendar = "calendar_days"
    working = "working_days"


@lru_cache(maxsize=64)
def _national(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("ID", years=[year]).keys())


def national_holidays(year: int) -> dict[date, str]:
    """Indonesia's national holidays of a year, with their names (for the admin page)."""
    return dict(sorted(holidays.country_holidays("ID", years=[year], language="id").items()))


@dataclass(frozen=True)
class WorkCalendar:
    """Which days count in working-day mode. ``local_days_off`` are the city's own (cuti bersama)."""

    local_days_off: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, days: Iterable[date]) -> WorkCalendar:
        return cls(frozenset(days))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _national(day.year) and day not in self.local_days_off

    # --- arithmetic ----------------------------------------------------------------------------

    def add(self, start: datetime, budget: timedelta, mode: Mode) -> datetime:
        """The instant at which ``budget`` of counted time has run from ``start``."""
        if budget < timedelta(0):
            raise ValueError("a deadline cannot be negative")
        if mode == Mode.calendar:
            return start + budget
        local = start.astimezone(WIB)
        day = local.date()
        midnight = datetime.combine(day, time(0), WIB)
        offset = local - midnight  # time already gone on the start day
        remaining = budget
        for _ in range(_MAX_DAYS + int(budget / DAY) * 3):
            if self.is_working_day(day):
                available = DAY - offset
                if remaining <= available:
                    return (datetime.combine(day, time(0), WIB) + offset + remaining).astimezone(UTC)
                remaining -= available
            day += DAY
            offset = timedelta(0)
        raise ValueError("no working days within three years: check the local days off")

    def between(self, start: datetime, end: datetime, mode: Mode) -> timedelta:
        """Counted time from ``start`` to ``end`` (zero if ``end`` is not after ``start``)."""
        if end <= start:
            return timedelta(0)
        if mode == Mode.calendar:
            return end - start
        a, b = start.astimezone(WIB), end.astimezone(WIB)
        total = timedelta(0)
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                lo = max(a, datetime.combine(day, time(0), WIB))
                hi = min(b, datetime.combine(day + DAY, time(0), WIB))
                if hi > lo:
                    total += hi - lo
            day += DAY
        return total
