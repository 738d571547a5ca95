import logging

from celery import shared_task

from chatbot.dashboard.tallies import rollups_refresh

logger = logging.getLogger(__name__)


@shared_task(name="chatbot.dashboard.tasks.dashboard_rollup_task")
def dashboard_rollup_task() -> int:
    """Beat: roll up the closed days the dashboard would otherwise read message by message."""
    days = rollups_refresh()
    logger.info("dashboard rollup: %d days read", days)
    return days
