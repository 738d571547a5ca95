from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
@staff_member_required
@permission_required("console.use_console", raise_exception=True)
def console_page(request: HttpRequest) -> HttpResponse:
    response = render(
        request,
        "console/index.html",
        {
            "ws_path": "/ws/console/",
            "shop_name": settings.CHATBOT_SHOP_NAME,
            "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
        },
    )
    # As the chat page: no inline script or style, so customer text that slipped through could not run.
    response["Content-Security-Policy"] = settings.CHATBOT_CHAT_CSP
    return response
