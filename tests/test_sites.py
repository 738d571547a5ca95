"""Sites for the embedded widget: origins typed in the admin, the widget's config, the WebSocket origin check."""

import time

import pytest
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ValidationError

from chatbot.asgi import application
from chatbot.conversations.models import Conversation
from chatbot.sites.models import Site

SHOP = "https://shop.example.com"


def site(**fields) -> Site:
    return Site.objects.create(
        **{"name": "Example shop", "allowed_origins": f"{SHOP}\nhttp://localhost:8080", **fields}
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("example.com/", "starts with http:// or https://"),
        ("http//x", "starts with http:// or https://"),
        ("https://shop.example.com/", "no path"),
        ("https://shop.example.com/help", "no path"),
        ("https://*.example.com", "wildcards are not allowed"),
        ("*", "wildcards are not allowed"),
        ("https://shop.example.com:99999", "port must be a number"),
        ("https://user:pw@shop.example.com", "no user name"),
        ("https://shop_example!.com", "is not a host name"),
        ("", "List at least one origin."),
    ],
)
def test_a_badly_typed_origin_is_a_clear_validation_error(typed, error):
    with pytest.raises(ValidationError) as raised:
        Site(name="x", allowed_origins=typed).full_clean()
    assert error in " ".join(raised.value.message_dict["allowed_origins"])


@pytest.mark.django_db
def test_origins_are_kept_as_browsers_send_them():
    found = Site(name="x", allowed_origins="HTTPS://Shop.Example.com:443\n\nhttp://127.0.0.1:8080\nhttps://[::1]:8443")
    found.full_clean()
    assert found.allowed_origins.splitlines() == [
        "https://shop.example.com",
        "http://127.0.0.1:8080",
        "https://[::1]:8443",
    ]


@pytest.mark.django_db
def test_the_widget_config_is_given_to_a_listed_origin_only(client):
    shop = site(greeting_en="Hi from the shop", greeting_zh="你好", colour="#aa3300")
    url = f"/widget/{shop.key}/config"
    response = client.get(url, HTTP_ORIGIN=SHOP)
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == SHOP
    config = response.json()
    assert config["name"] == "Example shop" and config["colour"] == "#aa3300"
    assert config["greeting"] == {"en": "Hi from the shop", "zh": "你好"}
    assert 'class="chat"' in config["markup"] and 'data-action="close-panel"' in config["markup"]
    refused = client.get(url, HTTP_ORIGIN="https://evil.example.net")
    assert refused.status_code == 403 and refused.json()["error"] == "unavailable"
    assert "markup" not in refused.json()
    assert client.get("/widget/no-such-key/config", HTTP_ORIGIN=SHOP).status_code == 403
    Site.objects.filter(pk=shop.pk).update(is_active=False)
    assert client.get(url, HTTP_ORIGIN=SHOP).status_code == 403


async def _connects(path: str, origin: str) -> bool:
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin.encode())])
    connected, _ = await communicator.connect()
    if connected:
        await communicator.receive_json_from(timeout=5)  # the welcome
    await communicator.disconnect()
    return connected


@pytest.mark.usefixtures("committed_db")
async def test_the_websocket_admits_the_own_host_and_listed_origins_only():
    from asgiref.sync import sync_to_async

    shop = await sync_to_async(site)(name="WS shop")
    other = await sync_to_async(site)(name="WS other", allowed_origins="https://other.example.org")
    off = await sync_to_async(site)(name="WS off", is_active=False)
    try:
        assert await _connects("/ws/chat/", "http://127.0.0.1:8000")  # the full page, as before
        assert not await _connects("/ws/chat/", SHOP)  # no site named: only the product's own host
        assert await _connects(f"/ws/chat/?site={shop.key}", SHOP)
        assert await _connects(f"/ws/chat/?site={shop.key}", "http://localhost:8080")
        assert not await _connects(f"/ws/chat/?site={shop.key}", "https://evil.example.net")
        assert not await _connects(f"/ws/chat/?site={other.key}", SHOP)  # listed for another site
        assert not await _connects("/ws/chat/?site=no-such-key", SHOP)
        assert not await _connects(f"/ws/chat/?site={off.key}", SHOP)
    finally:  # committed rows (the consumer reads them from its own thread): removed by hand
        await sync_to_async(Site.objects.filter(name__startswith="WS ").delete)()


async def _opens_conversation(path: str, origin: str, frame: dict) -> str:
    """The token of the conversation that `frame` starts on a socket opened at `path` from `origin`."""
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin.encode())])
    connected, _ = await communicator.connect()
    assert connected
    token = (await communicator.receive_json_from(timeout=5))["conversation"]
    await communicator.send_json_to(frame)
    if frame["type"] == "handoff_request":  # nobody is on duty in tests: the honest reply comes at once
        assert (await communicator.receive_json_from(timeout=5))["type"] == "handoff"
    await communicator.disconnect()
    return token


def _site_of(token: str) -> str | None:
    """The name of the site a conversation records, waiting for the row (written by the consumer's thread)."""
    deadline = time.monotonic() + 5
    while (conversation := Conversation.objects.filter(token=token).select_related("site").first()) is None:
        assert time.monotonic() < deadline, "the conversation was not written"
        time.sleep(0.05)
    return conversation.site.name if conversation.site else None


@pytest.mark.usefixtures("committed_db")
async def test_a_conversation_records_the_site_whose_widget_started_it():
    from asgiref.sync import sync_to_async

    shop = await sync_to_async(site)(name="WS recorded shop")
    message = {"type": "message", "id": "m1", "text": "what is your return policy"}
    tokens = []
    try:
        tokens.append(await _opens_conversation(f"/ws/chat/?site={shop.key}", SHOP, message))
        tokens.append(await _opens_conversation(f"/ws/chat/?site={shop.key}", SHOP, {"type": "handoff_request"}))
        tokens.append(await _opens_conversation("/ws/chat/", "http://127.0.0.1:8000", message))
        # the product's own page opened with a site's key (the widget on the product's host) is that site's
        tokens.append(await _opens_conversation(f"/ws/chat/?site={shop.key}", "http://127.0.0.1:8000", message))
        sites = [await sync_to_async(_site_of)(token) for token in tokens]
        assert sites == ["WS recorded shop", "WS recorded shop", None, "WS recorded shop"]
        await sync_to_async(Site.objects.filter(pk=shop.pk).delete)()
        assert await sync_to_async(_site_of)(tokens[0]) is None  # deleting a site keeps its conversations
    finally:
        await sync_to_async(Conversation.objects.filter(token__in=tokens).delete)()
        await sync_to_async(Site.objects.filter(name__startswith="WS ").delete)()


@pytest.mark.django_db
def test_the_site_admin_shows_the_snippet(admin_client):
    shop = site()
    page = admin_client.get(f"/admin/shop_sites/site/{shop.pk}/change/").content.decode()
    assert (
        f"&lt;script src=&quot;http://testserver/static/chat/widget.js&quot; data-site=&quot;{shop.key}&quot; async&gt;"
        in page
    )
    response = admin_client.post(
        "/admin/shop_sites/site/add/",
        {"name": "Bad", "allowed_origins": "example.com/", "colour": "#2453d6", "is_active": "on"},
    )
    assert response.status_code == 200 and "starts with http:// or https://" in response.content.decode()
