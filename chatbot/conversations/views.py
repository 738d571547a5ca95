from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    response = render(
        request,
        "chat/index.html",
        {
            "ws_path": "/ws/chat/",
            "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
            "shop_name": settings.CHATBOT_SHOP_NAME,
        },
    )
    # The page has no inline script or style: anything injected into it cannot run.
    response["Content-Security-Policy"] = settings.CHATBOT_CHAT_CSP
    return response
