"""The codes of the `error` frames the chat WebSocket sends: the consumer sends no other, and the chat page
(static/chat/chat.js) has a message for each, in every language it speaks."""

from enum import StrEnum


class ErrorCode(StrEnum):
    TOO_LONG = "too_long"
    RATE_LIMITED = "rate_limited"
    BAD_REQUEST = "bad_request"
    UNAVAILABLE = "unavailable"
    IDLE = "idle"
    INVALID = "invalid"  # a field of a hand-off form (leave_message, rating): the frame also names the `field`
