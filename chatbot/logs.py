"""One JSON object per log line (LOG_FORMAT=json, the default in production mode).

Ids travel as fields: `logger.info("...", extra={"conversation_id": 12, "message_id": 345})`. Customer text is
never logged at INFO: log the ids, and find the text in the admin.
"""

import json
import logging
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TaskRoutine(logging.Filter):
    """Drops Celery's "received" and "succeeded" INFO lines of one task (`task`, its name): for the answer task,
    two lines a message besides its own, which has the message's ids, outcome and latency ("message N answered").
    Its retries, failures and every other task's lines are kept. (Formatting and writing the two was about a
    twentieth of a worker's CPU a message: the serving section of BENCHMARKS.md.)"""

    def __init__(self, task: str) -> None:
        super().__init__()
        self.task = task

    def filter(self, record: logging.LogRecord) -> bool:
        from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

        data = getattr(record, "data", None)
        routine = record.msg is LOG_RECEIVED or record.msg is LOG_SUCCESS
        return not (routine and isinstance(data, dict) and data.get("name") == self.task)
