"""The shapes of what the server sends the browser about answers (README: "The WebSocket protocol")."""

from typing import Literal, TypedDict


class Suggestion(TypedDict):
    """A question offered as a button (the closest questions when the bot is not sure, a pair's follow-ups
    after an answer); the browser sends its id back as `suggestion`."""

    id: int
    question: str


class Candidate(TypedDict):
    """One of the model's ranked pairs, kept with a bot message as evidence."""

    pair: int
    question: str
    score: float


class AnswerFrame(TypedDict):
    """The fields of an `answer` frame (and of a bot turn in the welcome frame's history)."""

    reply_to: str | None
    message_id: int
    text: str
    html: str
    confidence: float | None
    suggestions: list[Suggestion]
    followups: list[Suggestion]
    handoff: bool
    outcome: str


class CustomerTurn(TypedDict):
    role: Literal["customer"]
    id: str | None
    text: str


class BotTurn(AnswerFrame):
    role: Literal["bot"]
    feedback: bool | None


class AgentFrame(TypedDict):
    """The fields of an `agent_message` frame: an operator's words (and an agent turn in the history)."""

    id: int
    text: str
    agent: str
    at: str


class AgentTurn(AgentFrame):
    role: Literal["agent"]


Turn = CustomerTurn | BotTurn | AgentTurn
