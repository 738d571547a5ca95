"""The operators' WebSocket (/ws/console/): staff session, Operators or Admins only; the queue, claims, replies.

A connection that is not an active staff user with the console permission is closed before it is accepted.
Frames are validated like the customer's: a bad one gets an `error` and the connection stays open.
"""

import asyncio
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatbot.console import presence, selectors, services
from chatbot.console.customer import Refused, text_clean
from chatbot.console.notify import STAFF, operator_group
from chatbot.conversations.consumers import ChatConsumer, FrameError
from chatbot.conversations.ratelimit import TokenBucket

logger = logging.getLogger(__name__)
NOTE_LIMIT = 4000
SEARCH_LIMIT = 200


def console_allowed(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("console.use_console")
    )


def _run(function: Any, **kwargs: Any) -> Any:
    return database_sync_to_async(function, thread_sensitive=False)(**kwargs)


def operators_list() -> list[dict[str, Any]]:
    """Everyone who has opened the console, with whether they take conversations now."""
    from django.contrib.auth import get_user_model

    members = presence.presence_members()
    alive = presence.presence_alive(user_ids=members)
    available = presence.presence_available(user_ids=members)
    users = get_user_model().objects.filter(pk__in=members, is_active=True).order_by("username")
    return [
        {
            "id": u.pk,
            "name": selectors.operator_name(u),
            "status": "available" if u.pk in available else "away" if u.pk in alive else "offline",
        }
        for u in users
    ]


def _int_field(frame: dict[str, Any], name: str) -> int:
    value = frame.get(name)
    if type(value) is not int or not 0 < value < 2**62:
        raise Refused("bad_request", f"'{name}' must be an id.")
    return value


class ConsoleConsumer(AsyncWebsocketConsumer):
    user: Any = None  # the staff user, set on connect
    beat: "asyncio.Task[None] | None" = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(console_allowed)(user):
            logger.warning("console refused: %s", "anonymous" if not getattr(user, "pk", None) else f"user {user.pk}")
            await self.close(code=4403)  # before accept: the handshake is refused
            return
        self.user = user
        self.bucket = TokenBucket(
            burst=settings.CHATBOT_CONSOLE_RATE_BURST, rate=settings.CHATBOT_CONSOLE_RATE_PER_SECOND
        )
        await self.channel_layer.group_add(STAFF, self.channel_name)
        await self.channel_layer.group_add(operator_group(user.pk), self.channel_name)
        await self.accept()
        await _run(presence.presence_touch, user_id=user.pk)
        self.beat = asyncio.ensure_future(self._heartbeat())
        await self.send_json(await _run(self._hello))
        await _run(self._announce)

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "operator": {"id": self.user.pk, "name": selectors.operator_name(self.user)},
            "status": presence.presence_status(user_id=self.user.pk),
            "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
            "queue": selectors.queue_list(),
            "mine": selectors.operator_conversations(user_id=self.user.pk),
            "tickets": selectors.tickets_list(),
            "operators": operators_list(),
        }

    def _announce(self) -> None:
        services.console_send(STAFF, {"type": "operators", "operators": operators_list()})

    async def _heartbeat(self) -> None:
        """Keep this operator alive; one console in the cluster per period also releases the conversations of
        operators gone past the grace period and refreshes the queue's wait times and offers."""
        period = max(0.5, settings.CHATBOT_HANDOFF_GRACE_SECONDS / 3)
        while True:
            await asyncio.sleep(period)
            try:
                await _run(presence.presence_touch, user_id=self.user.pk)
                if await _run(presence.sweep_lock, seconds=period):
                    await _run(_sweep)
            except Exception:
                logger.warning("console heartbeat of operator %s failed", self.user.pk, exc_info=True)

    async def disconnect(self, code: int) -> None:
        if self.user is None:
            return
        if self.beat:
            self.beat.cancel()
        for group in (STAFF, operator_group(self.user.pk)):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.warning("console of operator %s: group not left", self.user.pk)
        # If no other console of this operator keeps them alive, their conversations go back after the grace period.
        asyncio.get_running_loop().call_later(
            settings.CHATBOT_HANDOFF_GRACE_SECONDS + 0.5, lambda: asyncio.ensure_future(_run(_sweep))
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        reply_to = None
        try:
            try:
                frame = ChatConsumer._parse(self, text_data)
            except FrameError as error:
                raise Refused(error.code, error.detail) from None
            reply_to = frame.get("id") if isinstance(frame.get("id"), str) else None
            if not self.bucket.take():
                raise Refused("rate_limited", "Too many frames; wait a moment.")
            handler = HANDLERS.get(str(frame.get("type")))
            if handler is None:
                raise Refused("bad_request", f"Unknown frame type; expected one of {', '.join(sorted(HANDLERS))}.")
            await handler(self, frame, reply_to)
        except (Refused, services.ConsoleError) as error:
            await self.send_json({"type": "error", "code": error.code, "detail": error.detail, "reply_to": reply_to})
        except Exception:
            logger.exception("console frame of operator %s failed", self.user.pk)
            await self.send_json(
                {"type": "error", "code": "unavailable", "detail": "Not done; try again.", "reply_to": reply_to}
            )

    async def console_frame(self, event: dict[str, Any]) -> None:
        await self.send_json(event["frame"])

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    # --- frames ---------------------------------------------------------------------

    async def on_claim(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation = _int_field(frame, "conversation")
        await _run(services.conversation_claim, conversation_id=conversation, user=self.user)
        await self.send_json({"type": "claimed", "conversation": conversation, "reply_to": reply_to})

    async def on_open(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation = _int_field(frame, "conversation")
        payload = await _run(_conversation, conversation_id=conversation)
        await self.send_json({"type": "conversation", **payload, "reply_to": reply_to})

    async def on_reply(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation, text = _int_field(frame, "conversation"), text_clean(frame.get("text"))
        message = await _run(services.operator_reply, conversation_id=conversation, user=self.user, text=text)
        await self.send_json(
            {"type": "sent", "conversation": conversation, "message": message.pk, "reply_to": reply_to}
        )

    async def on_end(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation = _int_field(frame, "conversation")
        await _run(services.conversation_end, conversation_id=conversation, user=self.user, to=frame.get("to"))

    async def on_transfer(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation, to = _int_field(frame, "conversation"), _int_field(frame, "to")
        await _run(services.conversation_transfer, conversation_id=conversation, user=self.user, to_user_id=to)

    async def on_typing(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation, typing = _int_field(frame, "conversation"), frame.get("typing")
        if type(typing) is not bool:
            raise Refused("bad_request", "'typing' must be true or false.")
        await _run(services.typing_to_customer, conversation_id=conversation, user=self.user, typing=typing)

    async def on_status(self, frame: dict[str, Any], reply_to: str | None) -> None:
        status = frame.get("status")
        if status not in (presence.AVAILABLE, presence.AWAY):
            raise Refused("bad_request", "'status' must be 'available' or 'away'.")
        await _run(presence.presence_set_status, user_id=self.user.pk, status=status)
        await self.send_json({"type": "status", "status": status, "reply_to": reply_to})
        await _run(self._announce)

    async def on_note(self, frame: dict[str, Any], reply_to: str | None) -> None:
        conversation, text = _int_field(frame, "conversation"), frame.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > NOTE_LIMIT:
            raise Refused("bad_request", f"A note is text of 1 to {NOTE_LIMIT} characters.")
        await _run(_note, conversation_id=conversation, user=self.user, text=text.strip())

    async def on_search(self, frame: dict[str, Any], reply_to: str | None) -> None:
        query = frame.get("q")
        if not isinstance(query, str) or len(query) > SEARCH_LIMIT:
            raise Refused("bad_request", f"'q' is text of at most {SEARCH_LIMIT} characters.")
        results = await _run(selectors.canned_search, query=query)
        await self.send_json({"type": "canned", "q": query, "results": results, "reply_to": reply_to})

    async def on_tickets(self, frame: dict[str, Any], reply_to: str | None) -> None:
        await self.send_json({"type": "tickets", "tickets": await _run(selectors.tickets_list), "reply_to": reply_to})

    async def on_ticket_done(self, frame: dict[str, Any], reply_to: str | None) -> None:
        await _run(services.ticket_done, ticket_id=_int_field(frame, "ticket"), user=self.user)


HANDLERS = {
    name.removeprefix("on_"): getattr(ConsoleConsumer, name) for name in dir(ConsoleConsumer) if name.startswith("on_")
}


def _sweep() -> None:
    services.operators_sweep()
    if selectors.queue_list():
        services.queue_broadcast()


def _conversation(*, conversation_id: int) -> dict[str, Any]:
    from chatbot.conversations.models import Conversation

    conversation = Conversation.objects.select_related("operator").filter(pk=conversation_id).first()
    if conversation is None:
        raise services.ConsoleError("not_found", "No such conversation.")
    return selectors.conversation_payload(conversation)


def _note(*, conversation_id: int, user: Any, text: str) -> None:
    from chatbot.conversations.models import Conversation

    if not Conversation.objects.filter(pk=conversation_id).exists():
        raise services.ConsoleError("not_found", "No such conversation.")
    services.note_add(conversation_id=conversation_id, user=user, text=text)
