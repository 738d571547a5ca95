from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


def socket_page(request: HttpRequest, template: str, *, ws_path: str) -> HttpResponse:
    """A page that talks over one WebSocket (the chat, the operators' console), under the strict CSP: the pages
    have no inline script or style, so customer text that slipped into one could not run."""
    response = render(
        request,
        template,
        {"ws_path": ws_path, "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS, "shop_name": settings.CHATBOT_SHOP_NAME},
    )
    response["Content-Security-Policy"] = settings.CHATBOT_CHAT_CSP
    return response


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    return socket_page(request, "chat/index.html", ws_path="/ws/chat/")
