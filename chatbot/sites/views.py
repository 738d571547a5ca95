from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from chatbot.sites.services import origin_is_own, site_for

UNAVAILABLE = {"error": "unavailable", "detail": "Chat is not available on this site."}


def _cors(response: JsonResponse, origin: str) -> JsonResponse:
    """The widget runs on the shop's page: it may read this answer (a refusal too, so that it can say so
    instead of spinning). No cookies are sent or read."""
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def widget_config(request: HttpRequest, key: str) -> JsonResponse:
    """What the widget on a shop's page needs: the site's name, colour and greetings, and the panel's markup.
    Refused (403) for an unknown or inactive key, or a page origin the site does not list."""
    origin = request.headers.get("Origin", "")
    site = site_for(key=key, origin=origin, own=origin_is_own(origin))
    if site is None:
        return _cors(JsonResponse(UNAVAILABLE, status=403), origin)
    context = {"ws_path": "/ws/chat/", "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS, "shop_name": site.name}
    config = {
        "name": site.name,
        "colour": site.colour,
        "greeting": {"en": site.greeting_en, "zh": site.greeting_zh},
        "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
        "ws_path": "/ws/chat/",
        "styles": [static("chat/chat.css"), static("chat/widget.css")],
        "scripts": [static("chat/chat.js"), static("chat/handoff.js")],  # in this order: the client, its hand-off
        "markup": render_to_string("chat/_panel.html", {**context, "embedded": True}),
    }
    return _cors(JsonResponse(config), origin)
