"""Every error code the chat WebSocket sends has a message on the chat page, in each of its languages."""

import ast
import re
from pathlib import Path

from chatbot.conversations.protocol import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
CHAT_JS = (ROOT / "static/chat/chat.js").read_text(encoding="utf-8")
CONSUMERS = ROOT / "chatbot/conversations/consumers.py"


def page_messages() -> dict[str, dict[str, str]]:
    """The chat page's I18N table: {language: {key: text}}, read from chat.js."""
    table = CHAT_JS[CHAT_JS.index("const I18N = {") : CHAT_JS.index("\n  };", CHAT_JS.index("const I18N = {"))]
    languages = {}
    for language, body in re.findall(r"\n    (\w+): \{(.*?)\n    \},", table, re.DOTALL):
        languages[language] = dict(re.findall(r"\n\s+(\w+): '((?:[^'\\]|\\.)*)',", body))
    return languages


def test_the_page_has_a_message_for_every_error_code_in_every_language():
    languages = page_messages()
    assert set(languages) == {"en", "zh"}
    for language, messages in languages.items():
        missing = [code.value for code in ErrorCode if not messages.get(f"err_{code}")]
        assert missing == [], f"chat.js {language} has no err_<code> for {missing}"
    # the page's own list of known codes is derived from that table, so a code it has text for is one it shows
    assert "Object.keys(I18N.en).filter((k) => k.startsWith('err_')" in CHAT_JS


def test_the_idle_code_is_explained_not_shown_as_something_went_wrong():
    for messages in page_messages().values():
        assert messages["err_idle"] != messages["err_unknown"]


def test_the_consumer_sends_only_codes_of_the_protocol():
    """No error frame or FrameError in the consumer names its code with a bare string: each one is an
    ErrorCode member, so the enumeration above is every code the server can send."""
    tree = ast.parse(CONSUMERS.read_text(encoding="utf-8"))
    codes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "FrameError":
            codes.append(node.args[0])
        if isinstance(node, ast.Dict):
            codes += [
                value
                for key, value in zip(node.keys, node.values, strict=True)
                if getattr(key, "value", None) == "code"
            ]
    assert len(codes) > 10
    for code in codes:
        named = isinstance(code, ast.Attribute) and getattr(code.value, "id", None) == "ErrorCode"
        passed_on = isinstance(code, ast.Attribute) and code.attr == "code"  # error.code of a FrameError
        assert named or passed_on, ast.unparse(code)
        if named:
            assert code.attr in ErrorCode.__members__
