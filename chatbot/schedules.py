"""The product's periodic tasks (django-celery-beat): each created once with its default crontab, then the admin's
to edit."""

from django.conf import settings


def schedule_ensure(*, name: str, task: str, crontab: str, queue: str, description: str) -> None:
    """Create the periodic task `name` unless it exists; `crontab` is five fields, minute first."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=name).exists():
        return
    minute, hour, day_of_month, month_of_year, day_of_week = crontab.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(name=name, task=task, crontab=schedule, queue=queue, description=description)
