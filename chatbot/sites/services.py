"""Which site a widget belongs to, and whether a page's origin may use it."""

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
from django.core.exceptions import ValidationError

from chatbot.sites.models import Site
from chatbot.sites.origins import origin_normalise


def origin_is_own(origin: str) -> bool:
    """The product's own pages (the chat page at /): the origin's host is one of ALLOWED_HOSTS, as Channels checks."""
    return bool(origin) and AllowedHostsOriginValidator(None).valid_origin(urlparse(origin))


def site_for(*, key: str, origin: str, own: bool = False) -> Site | None:
    """The active site with this key, if `origin` is listed for it (or is the product's own, `own`); else None."""
    site = Site.objects.filter(key=key, is_active=True).first() if key else None
    if site is None or own:
        return site
    try:
        return site if origin_normalise(origin) in site.origins else None
    except ValidationError:
        return None


class SiteOriginValidator:
    """The chat WebSocket's origin check: the product's own host (ALLOWED_HOSTS, as Channels checks it), or,
    with `?site=<key>`, an origin listed for that active site. An unknown or inactive key is refused from
    anywhere, so a widget never connects as a site that is switched off."""

    def __init__(self, application: Any) -> None:
        self.application = application
        self.own = AllowedHostsOriginValidator(application)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return await self.own(scope, receive, send)
        key = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("site") or [""])[0]
        if not key:
            return await self.own(scope, receive, send)
        origin = dict(scope.get("headers") or []).get(b"origin", b"").decode("latin-1")
        site = await database_sync_to_async(site_for, thread_sensitive=False)(
            key=key, origin=origin, own=origin_is_own(origin)
        )
        if site is None:
            return await WebsocketDenier()(scope, receive, send)
        return await self.application({**scope, "site_id": site.pk}, receive, send)
