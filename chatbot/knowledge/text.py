"""Small text helpers shared by the knowledge base and the conversations."""

import nh3

from training.text import language as detect_language

__all__ = ["answer_html", "answer_plain", "detect_language"]
ALLOWED_TAGS = {"a", "b", "strong", "i", "em", "br", "p", "ul", "ol", "li"}


def answer_html(text: str) -> str:
    """Answer text as safe HTML: links and light formatting kept, everything else escaped away."""
    html = nh3.clean(
        text,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )
    return html.replace("\n", "<br>")


def answer_plain(text: str) -> str:
    """Answer text with all markup removed, for the `text` field of an answer frame."""
    return nh3.clean(text, tags=set()).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
