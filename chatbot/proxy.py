"""The client's address behind reverse proxies, for the per-address limits, /metrics and /healthz.

`X-Forwarded-For` is believed only when the socket peer is a proxy listed in CHATBOT_TRUSTED_PROXIES
(addresses or networks). Each proxy appends the address it received the request from, so the list is read
from the right: the right-most entry that is not a trusted proxy is the client. Entries to its left were
written by the client itself and are ignored. With no trusted proxies (the default) the peer is the client.
"""

import functools
import ipaddress
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def proxies_parse(values: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())
    except ValueError as error:
        raise ImproperlyConfigured(f"CHATBOT_TRUSTED_PROXIES: {error}") from None


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_address(*, peer: str, forwarded_for: str, proxies: tuple[Network, ...]) -> str:
    """The right-most address that is not a trusted proxy, walking back from the socket peer."""
    if not _trusted(peer, proxies):
        return peer
    address = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        address = hop
        if not _trusted(hop, proxies):
            break
    return address


class TrustedProxyMiddleware:
    """ASGI middleware: replaces scope["client"] (HTTP and WebSocket) with the address resolved above, and
    scope["scheme"] with `X-Forwarded-Proto` when the peer is a trusted proxy."""

    def __init__(self, app: Any) -> None:
        self.app = app
        proxies_parse(tuple(settings.CHATBOT_TRUSTED_PROXIES))  # a bad value stops the process at start

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        proxies = proxies_parse(tuple(settings.CHATBOT_TRUSTED_PROXIES))
        if scope["type"] in ("http", "websocket") and proxies:
            peer, port = scope.get("client") or ("", 0)
            if _trusted(peer, proxies):
                headers: dict[str, str] = {}
                for name, value in scope.get("headers", []):
                    if name in (b"x-forwarded-for", b"x-forwarded-proto"):  # repeated headers join as one list
                        key = name.decode()
                        headers[key] = (headers[key] + "," if key in headers else "") + value.decode("latin-1")
                address = client_address(peer=peer, forwarded_for=headers.get("x-forwarded-for", ""), proxies=proxies)
                scope = {**scope, "client": (address, port)}
                proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip()
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else {"http": "ws", "https": "wss"}[proto]
        return await self.app(scope, receive, send)


def request_is_trusted(request: Any) -> bool:
    """Staff, or a request from an address allowed to read internals (CHATBOT_METRICS_ALLOWED_IPS)."""
    if request.META.get("REMOTE_ADDR") in settings.CHATBOT_METRICS_ALLOWED_IPS:
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_staff)
