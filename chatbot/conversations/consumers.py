"""The customer's WebSocket: validate, store, enqueue, acknowledge. The model runs in a worker."""

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatbot.conversations import services
from chatbot.conversations.ratelimit import TokenBucket
from chatbot.conversations.tasks import answer_message_task

logger = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FrameError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def enqueue_answer(message_id: int) -> None:
    if settings.CHATBOT_INLINE_INFERENCE:
        answer_message_task.apply(args=[message_id])
    else:
        answer_message_task.apply_async(args=[message_id])


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("conversation") or [None])[0]
        self.bucket = TokenBucket(burst=settings.CHATBOT_RATE_BURST, rate=settings.CHATBOT_RATE_PER_SECOND)
        self.conversation, resumed = await database_sync_to_async(services.conversation_open)(token=token)
        self.group = services.conversation_group(self.conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        history, pending = await database_sync_to_async(self._catch_up)()
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
        await database_sync_to_async(services.answers_mark_delivered)([p["message_id"] for p in pending])

    def _catch_up(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return services.conversation_history(self.conversation), services.conversation_undelivered(self.conversation)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        reply_to = None
        try:
            try:
                frame, invalid = self._parse(text_data), None
            except FrameError as error:
                frame, invalid = {}, error
            reply_to = frame.get("id") if isinstance(frame.get("id"), str) else None
            if not self.bucket.take():
                raise FrameError("rate_limited", "Too many messages; wait a moment and send again.")
            if invalid:
                raise invalid
            if frame.get("type") == "message":
                await self._on_message(frame)
            elif frame.get("type") == "feedback":
                await self._on_feedback(frame)
            else:
                raise FrameError("bad_request", "Unknown frame type; expected 'message' or 'feedback'.")
        except FrameError as error:
            await self.send_json({"type": "error", "code": error.code, "detail": error.detail, "reply_to": reply_to})

    def _parse(self, text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError("bad_request", "Send JSON text frames, not binary.")
        if len(text_data.encode("utf-8", "surrogatepass")) > settings.CHATBOT_MAX_FRAME_BYTES:
            raise FrameError("too_long", f"Frame larger than {settings.CHATBOT_MAX_FRAME_BYTES} bytes.")
        try:
            frame = json.loads(text_data)
        except ValueError:
            raise FrameError("bad_request", "Malformed JSON.") from None
        if not isinstance(frame, dict):
            raise FrameError("bad_request", "A frame must be a JSON object.")
        return frame

    async def _on_message(self, frame: dict[str, Any]) -> None:
        client_id, text, suggestion = frame.get("id"), frame.get("text"), frame.get("suggestion")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 100:
            raise FrameError("bad_request", "'id' must be a string of 1 to 100 characters.")
        if not isinstance(text, str):
            raise FrameError("bad_request", "'text' must be a string.")
        if suggestion is not None and (type(suggestion) is not int or not 0 < suggestion < 2**62):
            raise FrameError("bad_request", "'suggestion' must be a Q&A pair id.")
        text = _CONTROL.sub("", text).strip()
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError("bad_request", "'text' is not valid Unicode.") from None
        if not text:
            raise FrameError("bad_request", "'text' is empty.")
        if len(text) > settings.CHATBOT_MAX_MESSAGE_CHARS:
            raise FrameError("too_long", f"Messages are limited to {settings.CHATBOT_MAX_MESSAGE_CHARS} characters.")
        try:
            await database_sync_to_async(services.message_receive)(
                conversation=self.conversation, client_id=client_id, text=text, suggestion=suggestion,
                enqueue=enqueue_answer,
            )
        except Exception:
            logger.exception("message from conversation %s not queued", self.conversation.pk)
            raise FrameError("unavailable", "The assistant is unavailable right now; please send again shortly.") from None

    async def _on_feedback(self, frame: dict[str, Any]) -> None:
        message_id, helpful = frame.get("message_id"), frame.get("helpful")
        if type(message_id) is not int or type(helpful) is not bool:
            raise FrameError("bad_request", "Feedback needs an integer 'message_id' and a boolean 'helpful'.")
        found = await database_sync_to_async(services.feedback_record)(
            conversation=self.conversation, message_id=message_id, helpful=helpful
        )
        if not found:
            raise FrameError("bad_request", "No such answer in this conversation.")

    async def chat_answer(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "answer", **event["answer"]})
        await database_sync_to_async(services.answers_mark_delivered)([event["answer"]["message_id"]])

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))
