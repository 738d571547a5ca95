"""Business hours: whether people answer now, and when they are next back."""

import datetime as dt
import zoneinfo

from django.utils import timezone

from chatbot.console.models import OpeningPeriod, Schedule


def _schedule() -> tuple[Schedule | None, list[OpeningPeriod]]:
    schedule = Schedule.objects.filter(is_active=True).order_by("pk").first()
    return schedule, list(schedule.periods.all()) if schedule else []


def hours_open(*, at: dt.datetime | None = None) -> bool:
    """True inside the active schedule's periods; True when no schedule (or no period) is set."""
    schedule, periods = _schedule()
    if schedule is None or not periods:
        return True
    local = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(schedule.time_zone))
    return any(p.weekday == local.weekday() and p.opens <= local.time() < p.closes for p in periods)


def hours_next_open(*, at: dt.datetime | None = None) -> dt.datetime | None:
    """When the next period opens (aware datetime), within a week; None when always open or no period."""
    schedule, periods = _schedule()
    if schedule is None or not periods:
        return None
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    local = (at or timezone.now()).astimezone(zone)
    starts = []
    for days in range(8):
        day = local.date() + dt.timedelta(days=days)
        for period in periods:
            if period.weekday == day.weekday():
                start = dt.datetime.combine(day, period.opens, tzinfo=zone)
                if start > local:
                    starts.append(start)
    return min(starts) if starts else None
