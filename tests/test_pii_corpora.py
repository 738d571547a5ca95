"""Redaction against two corpora: 200 messages with personal data in the forms customers write it (each must
come out with exactly the marked parts replaced), and 200 ordinary shop messages (each must come out unchanged)."""

import csv
import json
import re
from pathlib import Path

import pytest

from chatbot.privacy import PLACEHOLDERS, pii_redact

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MARKED = re.compile(r"«(\w+)\|([^»]+)»")


def corpus(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_the_corpora_have_two_hundred_distinct_messages_each():
    for name in ("pii_positive.txt", "pii_negative.txt"):
        lines = corpus(name)
        assert len(lines) == len(set(lines)) == 200, name


@pytest.mark.parametrize("line", corpus("pii_positive.txt"))
def test_it_redacts_every_form_of_personal_data_in_the_corpus(line):
    # given: the message as the customer wrote it, and what must be stored
    message = MARKED.sub(lambda match: match.group(2), line)
    stored = MARKED.sub(lambda match: PLACEHOLDERS[match.group(1)], line)
    # then
    assert pii_redact(message) == stored


@pytest.mark.parametrize("line", corpus("pii_negative.txt"))
def test_it_leaves_ordinary_shop_messages_unchanged(line):
    assert pii_redact(line) == line


def test_it_leaves_the_demo_questions_and_paraphrases_unchanged():
    pairs = json.loads((ROOT / "chatbot/knowledge/demo/demo_qa.json").read_text(encoding="utf-8"))
    questions = [text for pair in pairs for text in [pair["question"], *pair.get("alternates", [])]]
    with open(ROOT / "bench/data/demo_paraphrases.csv", encoding="utf-8", newline="") as handle:
        questions += [row["text"] for row in csv.DictReader(handle)]
    out_of_scope = json.loads((ROOT / "chatbot/knowledge/demo/out_of_scope.json").read_text(encoding="utf-8"))
    questions += [item if isinstance(item, str) else item["text"] for item in out_of_scope]
    assert len(questions) > 1000
    assert [text for text in questions if pii_redact(text) != text] == []


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("my number is 008613912345678", "my number is [phone]"),
        ("电话１３８１２３４５６７８，谢谢", "电话[phone]，谢谢"),  # full-width Chinese comma kept as written
        ("call (139)12345678", "call [phone]"),
        ("office 010-62345678 or 0755 12345678", "office [phone] or [phone]"),
        ("London 020 7946 0958", "London [phone]"),
        ("身份证 110105 19491231 002X", "身份证 [id]"),
        ("card 4111.1111.1111.1111", "card [card]"),
        ("write to name at example dot com", "write to [email]"),
    ],
)
def test_it_redacts_the_forms_the_review_found_missing(text, stored):
    assert pii_redact(text) == stored


@pytest.mark.parametrize(
    "text",
    [
        "I ordered at lumenstore.com last week",  # a site, not a spelt-out address
        "order 4111111111111111 never arrived",  # Luhn-valid, but labelled as an order number
        "订单号 11010519491231002X 还没发货",
    ],
)
def test_it_keeps_what_only_looks_like_personal_data(text):
    assert pii_redact(text) == text
