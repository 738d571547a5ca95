from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from chatbot.conversations.views import socket_page


@require_GET
@staff_member_required
@permission_required("console.use_console", raise_exception=True)
def console_page(request: HttpRequest) -> HttpResponse:
    return socket_page(request, "console/index.html", ws_path="/ws/console/")
