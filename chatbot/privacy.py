"""Personal data in customer messages: redacted before a message is stored (and so before training).

Kinds (CHATBOT_REDACT_PII, comma-separated; empty turns redaction off):
  email   e-mail addresses                                      -> [email]
  cn_id   Chinese resident ID numbers, 18 digits with checksum  -> [id]
  card    payment card numbers, 13-19 digits passing Luhn       -> [card]
  phone   Chinese mobile numbers (+86 optional), numbers with a
          leading +country code, and (555) 123-4567 style       -> [phone]
Digits that fail a checksum (an order number, say) are kept.
"""

import re
from collections.abc import Callable, Iterable

from django.conf import settings

EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CN_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE = re.compile(
    r"(?<![0-9A-Za-z+])(?:"
    r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"  # Chinese mobile: 138 1234 5678, +86 13812345678
    r"|\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}"  # (555) 123-4567, 555-123-4567
    r")(?!\d)"
)
CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def cn_id_ok(number: str) -> bool:
    """GB 11643-1999: ISO 7064 MOD 11-2 check character."""
    total = sum(int(char) * weight for char, weight in zip(number[:17], CN_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group()


def _cn_id(match: re.Match) -> str:
    return "[id]" if cn_id_ok(match.group()) else match.group()


def _phone(match: re.Match) -> str:
    return "[phone]" if 7 <= sum(char.isdigit() for char in match.group()) <= 15 else match.group()


RULES: dict[str, tuple[re.Pattern, Callable[[re.Match], str]]] = {
    "email": (EMAIL, lambda match: "[email]"),
    "cn_id": (CN_ID, _cn_id),
    "card": (CARD, _card),
    "phone": (PHONE, _phone),
}


def pii_redact(text: str, kinds: Iterable[str] | None = None) -> str:
    """`text` with the configured kinds of personal data replaced by a placeholder."""
    chosen = set(settings.CHATBOT_REDACT_PII if kinds is None else kinds)
    for kind, (pattern, replace) in RULES.items():  # order matters: an ID number is also a Luhn-valid run
        if kind in chosen:
            text = pattern.sub(replace, text)
    return text
