"""The customer's WebSocket: validate, store, enqueue, acknowledge. The model runs in a worker."""

import asyncio
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatbot.connections import db_async
from chatbot.console import customer as handoff
from chatbot.conversations import services
from chatbot.conversations.frames import AnswerFrame, Turn
from chatbot.conversations.models import Conversation, new_token
from chatbot.conversations.protocol import ErrorCode
from chatbot.conversations.ratelimit import AddressLimits, TokenBucket, address_limits

logger = logging.getLogger(__name__)
UNAVAILABLE = "The assistant is unavailable right now; please send again shortly."
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FrameError(Exception):
    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


_addresses: AddressLimits = address_limits()
_REFUSED = {
    "connections": "Too many connections from your address.",
    "connects": "Too many new connections from your address; wait a moment.",
}


class ChatConsumer(AsyncWebsocketConsumer):
    address, idle_timer, group, renewed_at = "", None, "", 0.0
    conversation: Conversation | None = None  # written with the first message (a connect writes nothing)
    closed = False  # an operator closed the conversation: the next message starts a new one

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Whatever ends this connection (a disconnect, a crash, a cancellation), its place in the per-address
        connection count is given back: a leaked place would lock that address out until its lease ends."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release_address()

    async def _release_address(self) -> None:
        if self.address:
            address, self.address = self.address, ""
            await _addresses.close(address, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its `close_old_connections()` before every event: that is a hop to the
        one thread-sensitive executor thread and back for each frame and each answer (two a message, serialised
        on that one thread), and it checks that thread's connections, which this consumer never uses. Its
        database work runs in `db_async`, which checks the connection of the thread it runs in."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        address = (self.scope.get("client") or ["unknown"])[0]
        refused = await self._refusal(address)
        if refused:
            await self.accept()
            await self.send_json({"type": "error", "code": ErrorCode.RATE_LIMITED, "detail": _REFUSED[refused]})
            await self.close(code=4429)
            return
        self.address, self.renewed_at = address, time.monotonic()
        self._touch()
        try:
            await self._open()
        except BaseException:
            await self.disconnect(1011)  # a failed handshake must not keep its place in the limits
            raise

    async def _refusal(self, address: str) -> str:
        """Why this connection is refused ("connects" or "connections"), or "" when it is not."""
        burst, rate = settings.CHATBOT_IP_CONNECT_BURST, settings.CHATBOT_IP_CONNECTS_PER_SECOND
        if not await _addresses.take(address, "connects", burst=burst, rate=rate):
            return "connects"
        if not await _addresses.open(address, self.channel_name, settings.CHATBOT_IP_MAX_CONNECTIONS):
            return "connections"
        return ""

    async def _open(self) -> None:
        """Resume the conversation of the token, or reserve a new token: its row is written with the first
        message, so a connection that sends nothing writes nothing."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("conversation") or [None])[0]
        self.bucket = TokenBucket(burst=settings.CHATBOT_RATE_BURST, rate=settings.CHATBOT_RATE_PER_SECOND)
        conversation = await db_async(services.conversation_resume)(token=token) if token else None
        self.conversation, self.token = conversation, conversation.token if conversation else new_token()
        if conversation:
            await self._join(conversation)
        await self.accept()
        history, pending = await db_async(self._catch_up)(conversation) if conversation else ([], [])
        await self.send_json(
            {
                "type": "welcome",
                "conversation": self.token,
                "resumed": self.conversation is not None,
                "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
                "history": history,
            }
        )
        for payload in pending:
            await self.send_json({"type": "answer", **payload})
        if pending:
            await db_async(services.answers_mark_delivered)([p["message_id"] for p in pending])
        if self.conversation:
            await handoff.customer_welcome(self)

    @staticmethod
    def _catch_up(conversation: Conversation) -> tuple[list[Turn], list[AnswerFrame]]:
        return services.conversation_history(conversation), services.conversation_undelivered(conversation)

    async def _conversation_for(self, *, text: str, after_close_new: bool = True) -> Conversation:
        """This socket's conversation, written now if the token was only reserved (`text`: its first words).
        After an operator closed it, a new one (`after_close_new`; a rating still goes to the closed one)."""
        if self.closed and after_close_new:
            await self._start_over()
        if self.conversation is None:
            self.conversation = await db_async(services.conversation_start)(
                token=self.token,
                text=text,
                site_id=self.scope.get("site_id"),  # set by SiteOriginValidator
            )
            await self._join(self.conversation)
        return self.conversation

    async def _start_over(self) -> None:
        """After an operator closed the conversation: a new token, written with this message; the page is told
        with a fresh `welcome` (not resumed, no history). The closed conversation keeps its transcript."""
        await self.channel_layer.group_discard(self.group, self.channel_name)
        self.conversation, self.token, self.closed = None, new_token(), False
        await self.send_json(
            {
                "type": "welcome",
                "conversation": self.token,
                "resumed": False,
                "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
                "history": [],
                "after": "closed",
            }
        )

    async def _join(self, conversation: Conversation) -> None:
        self.group = services.conversation_group(conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

    def _touch(self) -> None:
        """(Re)start the idle timer: a connection that sends nothing for CHATBOT_IDLE_SECONDS is closed."""
        if self.idle_timer:
            self.idle_timer.cancel()
        if settings.CHATBOT_IDLE_SECONDS > 0:
            self.idle_timer = asyncio.get_running_loop().call_later(
                settings.CHATBOT_IDLE_SECONDS, lambda: asyncio.ensure_future(self._close_idle())
            )

    async def _close_idle(self) -> None:
        await self.send_json(
            {"type": "error", "code": ErrorCode.IDLE, "detail": "Closed after a long silence; send to resume."}
        )
        await self.close(code=4408)

    async def disconnect(self, code: int) -> None:
        if self.idle_timer:
            self.idle_timer.cancel()
        await self._release_address()
        if self.conversation:
            await handoff.customer_gone(self)
        if self.group:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:  # the channel layer is down: the group entry expires on its own
                logger.warning("%s: group not left (channel layer unavailable)", self.group)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.address:  # refused at connect
            return
        reply_to = None
        try:
            try:
                frame, invalid = self._parse(text_data), None
            except FrameError as error:
                frame, invalid = {}, error
            reply_to = frame.get("id") if isinstance(frame.get("id"), str) else None
            self._touch()
            if not self.bucket.take() or not await self._address_allows_frame():
                raise FrameError(ErrorCode.RATE_LIMITED, "Too many messages; wait a moment and send again.")
            if invalid:
                raise invalid
            if frame.get("type") == "message":
                await self._on_message(frame)
            elif frame.get("type") == "feedback":
                await self._on_feedback(frame)
            elif frame.get("type") in handoff.FRAMES | handoff.CONSOLE_FRAMES:
                # asking for a person before writing anything starts one
                await self._conversation_for(text="", after_close_new=frame.get("type") in handoff.STARTING)
                await handoff.customer_frame(self, frame)
            else:
                raise FrameError(
                    ErrorCode.BAD_REQUEST, "Unknown frame type; expected 'message', 'feedback' or a hand-off frame."
                )
        except FrameError as error:
            await self.send_json({"type": "error", "code": error.code, "detail": error.detail, "reply_to": reply_to})

    async def _address_allows_frame(self) -> bool:
        burst, rate = settings.CHATBOT_IP_RATE_BURST, settings.CHATBOT_IP_RATE_PER_SECOND
        if not await _addresses.take(self.address, "frames", burst=burst, rate=rate):
            return False
        if time.monotonic() - self.renewed_at > settings.CHATBOT_IDLE_SECONDS / 2:  # the lease outlives idleness
            self.renewed_at = time.monotonic()
            await _addresses.renew(self.address, self.channel_name)
        return True

    def _parse(self, text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError(ErrorCode.BAD_REQUEST, "Send JSON text frames, not binary.")
        if len(text_data.encode("utf-8", "surrogatepass")) > settings.CHATBOT_MAX_FRAME_BYTES:
            raise FrameError(ErrorCode.TOO_LONG, f"Frame larger than {settings.CHATBOT_MAX_FRAME_BYTES} bytes.")
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
            raise FrameError(ErrorCode.BAD_REQUEST, "Malformed JSON.") from None
        if not isinstance(frame, dict):
            raise FrameError(ErrorCode.BAD_REQUEST, "A frame must be a JSON object.")
        try:  # JSON escapes can smuggle lone surrogates, which neither PostgreSQL nor the wire accepts
            json.dumps(frame, ensure_ascii=False).encode("utf-8")
        except (UnicodeEncodeError, ValueError):
            raise FrameError(ErrorCode.BAD_REQUEST, "The frame is not valid Unicode.") from None
        return frame

    async def _on_message(self, frame: dict[str, Any]) -> None:
        client_id, text, suggestion = frame.get("id"), frame.get("text"), frame.get("suggestion")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 100:
            raise FrameError(ErrorCode.BAD_REQUEST, "'id' must be a string of 1 to 100 characters.")
        if not isinstance(text, str):
            raise FrameError(ErrorCode.BAD_REQUEST, "'text' must be a string.")
        if suggestion is not None and (type(suggestion) is not int or not 0 < suggestion < 2**62):
            raise FrameError(ErrorCode.BAD_REQUEST, "'suggestion' must be a Q&A pair id.")
        text = _CONTROL.sub("", text).strip()
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError(ErrorCode.BAD_REQUEST, "'text' is not valid Unicode.") from None
        if not text:
            raise FrameError(ErrorCode.BAD_REQUEST, "'text' is empty.")
        if len(text) > settings.CHATBOT_MAX_MESSAGE_CHARS:
            raise FrameError(
                ErrorCode.TOO_LONG, f"Messages are limited to {settings.CHATBOT_MAX_MESSAGE_CHARS} characters."
            )
        try:
            conversation = await self._conversation_for(text=text)
            message, created = await db_async(services.message_receive)(
                conversation=conversation,
                client_id=client_id,
                text=text,
                suggestion=suggestion,
                enqueue=services.answer_enqueue,
            )
            answer = None if created else await db_async(services.answer_for)(message)
        except Exception:
            logger.exception(
                "message from conversation %s not queued",
                self.conversation and self.conversation.pk,
                extra={"conversation_id": self.conversation and self.conversation.pk, "client_id": client_id},
            )
            raise FrameError(ErrorCode.UNAVAILABLE, UNAVAILABLE) from None
        logger.info(
            "message received" if created else "message re-sent",
            extra={"conversation_id": message.conversation_id, "message_id": message.pk, "chars": len(text)},
        )
        if answer:  # re-sent after its answer was lost on the way (a channel-layer outage): send it again
            await self.send_json({"type": "answer", **answer})

    async def _on_feedback(self, frame: dict[str, Any]) -> None:
        message_id, helpful = frame.get("message_id"), frame.get("helpful")
        if type(message_id) is not int or type(helpful) is not bool:
            raise FrameError(ErrorCode.BAD_REQUEST, "Feedback needs an integer 'message_id' and a boolean 'helpful'.")
        if self.conversation is None:
            raise FrameError(ErrorCode.BAD_REQUEST, "No such answer in this conversation.")
        try:
            found = await db_async(services.feedback_record)(
                conversation=self.conversation, message_id=message_id, helpful=helpful
            )
        except Exception:  # the database is down: say so and keep the connection, as for messages
            logger.exception("feedback from conversation %s not stored", self.conversation.pk)
            raise FrameError(ErrorCode.UNAVAILABLE, UNAVAILABLE) from None
        if not found:
            raise FrameError(ErrorCode.BAD_REQUEST, "No such answer in this conversation.")

    async def chat_answer(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "answer", **event["answer"]})
        _mark_delivered_soon(event["answer"]["message_id"])

    async def handoff_frame(self, event: dict[str, Any]) -> None:
        await handoff.customer_deliver(self, event)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))


_delivered: dict[asyncio.AbstractEventLoop, set[int]] = {}


DELIVERED_BATCH_SECONDS = 0.5


def _mark_delivered_soon(message_id: int) -> None:
    """Answers sent within DELIVERED_BATCH_SECONDS are marked delivered with one UPDATE: at a few dozen answers
    a second a shorter window made it one UPDATE per answer. If the process dies first, they are sent again
    on resume (the page ignores an answer it already shows)."""
    loop = asyncio.get_running_loop()
    if loop not in _delivered:
        _delivered[loop] = set()
        loop.call_later(DELIVERED_BATCH_SECONDS, lambda: asyncio.ensure_future(_flush_delivered(loop)))
    _delivered[loop].add(message_id)


async def _flush_delivered(loop: asyncio.AbstractEventLoop) -> None:
    ids = _delivered.pop(loop, set())
    try:
        await db_async(services.answers_mark_delivered)(sorted(ids))
    except Exception:
        logger.warning("%s answers not marked delivered; they are sent again when the browser resumes", len(ids))
