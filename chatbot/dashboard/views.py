import csv
import io
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from chatbot.conversations.models import Message
from chatbot.dashboard.figures import FIGURES, Figure, figures_compute
from chatbot.dashboard.periods import PeriodForm

# The page's own script and Chart.js, both from this host; the chart data is JSON, not script.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """How the bot is doing, for Operators and Admins (whoever may read conversations)."""
    if not request.user.has_perm("conversations.view_message"):
        raise PermissionDenied
    form = PeriodForm(request.GET or {"period": "7d"})
    if not form.is_valid():
        return _page(request, form, figures=[], status=400)
    period = form.period_get()
    if request.GET.get("csv"):
        if request.GET["csv"] not in FIGURES:
            raise Http404("no such figure")
        return _csv(figures_compute(period=period, only=request.GET["csv"])[0], period)
    return _page(request, form, figures=figures_compute(period=period), period=period)


def _page(
    request: HttpRequest, form: PeriodForm, *, figures: list[Figure], status: int = 200, **extra: Any
) -> HttpResponse:
    query = request.GET.copy()
    query.pop("csv", None)
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "form": form,
        "figures": figures,
        "charts": {figure.key: figure.chart for figure in figures if figure.chart and not figure.empty},
        "fresh": not Message.objects.exists(),
        "query": query.urlencode(),
        **extra,
    }
    response = TemplateResponse(request, "admin/dashboard/index.html", context, status=status)
    response["Content-Security-Policy"] = DASHBOARD_CSP
    return response


def _cell(value: Any) -> Any:
    """Customer text can start like a spreadsheet formula: quoted so that it stays text."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _csv(figure: Figure, period: Any) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(figure.columns)
    writer.writerows([_cell(value) for value in row] for row in figure.rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"{figure.key}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
