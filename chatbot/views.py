import hashlib
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.http import require_GET

from chatbot.health import workers_status
from chatbot.metrics import metrics_register
from chatbot.proxy import request_is_trusted
from chatbot.redis_client import redis_client
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
        redis_client().ping()
        return {"ok": True}
    except Exception as error:
        return {"ok": False, "error": str(error)}


def _model(database_ok: bool) -> dict:
    if not database_ok:
        return {"ok": False, "error": "database unavailable"}
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        return {"ok": False, "error": "no active model: train one (manage.py retrain)"}
    result = {"ok": True, "active_version": version.pk, "encoder": version.encoder}
    problem = _artifact_problem(version)
    try:
        workers = workers_status()
    except Exception as error:
        workers, problem = [], problem or f"worker reports unreadable: {error}"
    serving = sorted({w["loaded_version"] for w in workers if w.get("loaded_version")})
    failing = [w for w in workers if w.get("loaded_version") != version.pk]
    result["workers"] = [{key: w.get(key) for key in ("worker", "loaded_version", "error")} for w in workers]
    if problem or failing:
        result["ok"] = False
        result["error"] = problem or "; ".join(sorted({w.get("error") or "not loaded yet" for w in failing}))
        result["serving_versions"] = serving
    return result


_verified: dict[tuple[str, str], tuple[int, str]] = {}


def _artifact_problem(version: ModelVersion) -> str:
    """Empty when the active artifact exists and matches its checksum (hashed once per name and size)."""
    storage, name = version.artifact.storage, version.artifact.name
    try:
        size = storage.size(name)
        if _verified.get((name, version.checksum), (None,))[0] != size:
            with storage.open(name, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            _verified[(name, version.checksum)] = (size, digest)
        if _verified[(name, version.checksum)][1] != version.checksum:
            return f"artifact of v{version.pk} does not match its checksum"
    except (OSError, FileNotFoundError):
        return f"artifact of v{version.pk} missing from storage"
    return ""


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 or 503 with the status for anyone (a load balancer's probe); what was checked, with its errors, only
    for the monitoring addresses and staff (CHATBOT_METRICS_ALLOWED_IPS, as /metrics): the errors name hosts,
    users and workers."""
    database = _database()
    checks = {"database": database, "redis": _redis(), "model": _model(database["ok"])}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "unhealthy", **(checks if request_is_trusted(request) else {})}
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for the scraper's address (CHATBOT_METRICS_ALLOWED_IPS) or a staff user."""
    if not request_is_trusted(request):
        return HttpResponseForbidden("metrics are for the monitoring system")
    from django_prometheus.exports import ExportToDjangoView

    metrics_register()
    return ExportToDjangoView(request)
