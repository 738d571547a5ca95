"""The customer's WebSocket: validate, store, enqueue, acknowledge. The model runs in a worker."""

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatbot.console import customer as handoff
from chatbot.conversations import services
from chatbot.conversations.frames import AnswerFrame, BotTurn, CustomerTurn
from chatbot.conversations.protocol import ErrorCode
from chatbot.conversations.ratelimit import AddressLimits, TokenBucket

logger = logging.getLogger(__name__)
UNAVAILABLE = "The assistant is unavailable right now; please send again shortly."
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FrameError(Exception):
    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


_addresses = AddressLimits()


class ChatConsumer(AsyncWebsocketConsumer):
    address, idle_timer = "", None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Whatever ends this connection (a disconnect, a crash, a cancellation), its place in the per-address
        connection count is given back: a leaked place would lock that address out of this process for good."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release_address()

    def _release_address(self) -> None:
        if self.address:
            _addresses.close(self.address)
            self.address = ""

    async def connect(self) -> None:
        address = (self.scope.get("client") or ["unknown"])[0]
        if not _addresses.open(address, settings.CHATBOT_IP_MAX_CONNECTIONS):
            await self.accept()
            await self.send_json(
                {"type": "error", "code": ErrorCode.RATE_LIMITED, "detail": "Too many connections from your address."}
            )
            await self.close(code=4429)
            return
        self.address = address
        self._touch()
        try:
            await self._open()
        except BaseException:
            await self.disconnect(1011)  # a failed handshake must not keep its place in the limits
            raise

    async def _open(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("conversation") or [None])[0]
        self.bucket = TokenBucket(burst=settings.CHATBOT_RATE_BURST, rate=settings.CHATBOT_RATE_PER_SECOND)
        self.conversation, resumed = await database_sync_to_async(services.conversation_open, thread_sensitive=False)(
            token=token
        )
        self.group = services.conversation_group(self.conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        history, pending = await database_sync_to_async(self._catch_up, thread_sensitive=False)()
        await self.send_json(
            {
                "type": "welcome",
                "conversation": self.conversation.token,
                "resumed": resumed,
                "max_length": settings.CHATBOT_MAX_MESSAGE_CHARS,
                "history": history,
            }
        )
        for payload in pending:
            await self.send_json({"type": "answer", **payload})
        if pending:
            await database_sync_to_async(services.answers_mark_delivered)([p["message_id"] for p in pending])
        await handoff.customer_welcome(self)

    def _catch_up(self) -> tuple[list[CustomerTurn | BotTurn], list[AnswerFrame]]:
        return services.conversation_history(self.conversation), services.conversation_undelivered(self.conversation)

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
        self._release_address()
        if getattr(self, "conversation", None):
            await handoff.customer_gone(self)
        if getattr(self, "group", None):
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:  # the channel layer is down: the group entry expires on its own
                logger.warning("conversation %s: group not left (channel layer unavailable)", self.conversation.pk)

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
            if not self.bucket.take() or not _addresses.take(
                self.address, burst=settings.CHATBOT_IP_RATE_BURST, rate=settings.CHATBOT_IP_RATE_PER_SECOND
            ):
                raise FrameError(ErrorCode.RATE_LIMITED, "Too many messages; wait a moment and send again.")
            if invalid:
                raise invalid
            if frame.get("type") == "message":
                await self._on_message(frame)
            elif frame.get("type") == "feedback":
                await self._on_feedback(frame)
            elif frame.get("type") in handoff.FRAMES | handoff.CONSOLE_FRAMES:
                await handoff.customer_frame(self, frame)
            else:
                raise FrameError(
                    ErrorCode.BAD_REQUEST, "Unknown frame type; expected 'message', 'feedback' or a hand-off frame."
                )
        except FrameError as error:
            await self.send_json({"type": "error", "code": error.code, "detail": error.detail, "reply_to": reply_to})

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
            message, created = await database_sync_to_async(services.message_receive, thread_sensitive=False)(
                conversation=self.conversation,
                client_id=client_id,
                text=text,
                suggestion=suggestion,
                enqueue=services.answer_enqueue,
            )
            answer = (
                None if created else await database_sync_to_async(services.answer_for, thread_sensitive=False)(message)
            )
        except Exception:
            logger.exception(
                "message from conversation %s not queued",
                self.conversation.pk,
                extra={"conversation_id": self.conversation.pk, "client_id": client_id},
            )
            raise FrameError(ErrorCode.UNAVAILABLE, UNAVAILABLE) from None
        logger.info(
            "message received" if created else "message re-sent",
            extra={"conversation_id": self.conversation.pk, "message_id": message.pk, "chars": len(text)},
        )
        if answer:  # re-sent after its answer was lost on the way (a channel-layer outage): send it again
            await self.send_json({"type": "answer", **answer})

    async def _on_feedback(self, frame: dict[str, Any]) -> None:
        message_id, helpful = frame.get("message_id"), frame.get("helpful")
        if type(message_id) is not int or type(helpful) is not bool:
            raise FrameError(ErrorCode.BAD_REQUEST, "Feedback needs an integer 'message_id' and a boolean 'helpful'.")
        try:
            found = await database_sync_to_async(services.feedback_record, thread_sensitive=False)(
                conversation=self.conversation, message_id=message_id, helpful=helpful
            )
        except Exception:  # the database is down: say so and keep the connection, as for messages
            logger.exception("feedback from conversation %s not stored", self.conversation.pk)
            raise FrameError(ErrorCode.UNAVAILABLE, UNAVAILABLE) from None
        if not found:
            raise FrameError(ErrorCode.BAD_REQUEST, "No such answer in this conversation.")

    async def handoff_frame(self, event: dict[str, Any]) -> None:
        await handoff.customer_deliver(self, event)

    async def chat_answer(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "answer", **event["answer"]})
        _mark_delivered_soon(event["answer"]["message_id"])

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))


_delivered: dict[asyncio.AbstractEventLoop, set[int]] = {}


def _mark_delivered_soon(message_id: int) -> None:
    """Answers sent in the next 50 ms are marked delivered with one UPDATE: the web process's database
    thread is shared by all its connections. If the process dies first, they are sent again on resume."""
    loop = asyncio.get_running_loop()
    if loop not in _delivered:
        _delivered[loop] = set()
        loop.call_later(0.05, lambda: asyncio.ensure_future(_flush_delivered(loop)))
    _delivered[loop].add(message_id)


async def _flush_delivered(loop: asyncio.AbstractEventLoop) -> None:
    ids = _delivered.pop(loop, set())
    try:
        await database_sync_to_async(services.answers_mark_delivered, thread_sensitive=False)(sorted(ids))
    except Exception:
        logger.warning("%s answers not marked delivered; they are sent again when the browser resumes", len(ids))
