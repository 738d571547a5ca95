import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from chatbot.registry.models import ModelVersion

logger = logging.getLogger(__name__)


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as error:
        return {"ok": False, "error": str(error)}


def _redis() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "mode": "embedded (no Redis configured)"}
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        return {"ok": True}
    except Exception as error:
        return {"ok": False, "error": str(error)}


def _model(database_ok: bool) -> dict:
    if not database_ok:
        return {"ok": False, "error": "database unavailable"}
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        return {"ok": False, "error": "no active model: train one (manage.py retrain)"}
    artifact_ok = version.artifact.storage.exists(version.artifact.name)
    result = {"ok": artifact_ok, "active_version": version.pk, "encoder": version.encoder}
    if not artifact_ok:
        result["error"] = "artifact missing from storage"
    return result


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = _database()
    checks = {"database": database, "redis": _redis(), "model": _model(database["ok"])}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unhealthy", **checks}, status=200 if healthy else 503)
