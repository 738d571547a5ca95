"""Personal data in customer messages: redacted before a message is stored (and so before training).

Kinds (CHATBOT_REDACT_PII, comma-separated; empty turns redaction off):
  email   e-mail addresses, also spelt out (name at example dot com, name[at]example.com)  -> [email]
  cn_id   Chinese resident ID numbers, 18 digits with checksum, spaces or dashes allowed -> [id]
  card    payment card numbers, 13-19 digits passing Luhn, spaces, dashes or dots        -> [card]
  phone   Chinese mobiles (+86 / 0086 / 86 optional, (139)12345678), numbers with a
          +country or 00country code, landlines with a trunk 0 written with a separator
          (010-62345678, 0755 12345678, 020 7946 0958), and (555) 123-4567 style        -> [phone]
Matching runs on the NFKC form of the text (full-width digits and ＠ are caught), but the stored text is the
customer's own outside the placeholders (full-width Chinese punctuation stays as written).
Digits that fail a checksum, and numbers labelled as an order, tracking, SKU or model number, are kept.
"""

import re
import unicodedata
from collections.abc import Callable, Iterable

from django.conf import settings

# Digit runs may be grouped with these; a run never starts right after a digit or a digit and a separator,
# so a longer number is never redacted from its middle.
_START = r"(?<![0-9A-Za-z+])(?<!\d[ .-])"
_END = r"(?![0-9])(?![ .-]\d)"

EMAIL = re.compile(r"[A-Za-z0-9._!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SPELT_DOT = r"(?:\s*[\[(<{]\s*dot\s*[\])>}]\s*|\s+dot\s+)"
EMAIL_SPELT = re.compile(
    r"(?<![A-Za-z0-9._%+-])[a-z0-9._%+-]+"
    r"(?P<at>\s*[\[(<{]\s*at\s*[\])>}]\s*|\s+at\s+|\s*@\s*)"
    rf"{_LABEL}(?:(?:{_SPELT_DOT}|\.){_LABEL})*(?:{_SPELT_DOT}|\.)[a-z]{{2,}}(?![A-Za-z0-9])",
    re.IGNORECASE,
)
CN_ID = re.compile(rf"{_START}[1-9](?:[ -]?\d){{16}}[ -]?[\dXx](?![0-9A-Za-z])")
CARD = re.compile(rf"{_START}\d(?:[ .-]?\d){{12,18}}{_END}")
PHONE = re.compile(
    rf"(?=[(+0-9]){_START}(?:"
    r"(?:\(?(?:\+|00)?86\)?[ .-]?)?(?:1[3-9]\d|\(1[3-9]\d\))[ .-]?\d{4}[ .-]?\d{4}"  # 138 1234 5678, 008613812345678
    r"|(?:\+|00(?=\d{1,3}[ .-]))\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|(?P<trunk>\(0\d{1,4}\)[ .-]?|0\d{1,4}[ .-])\d{2,8}(?:[ .-]\d{2,4}){0,3}"  # 010-62345678, 020 7946 0958
    r"|(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # (555) 123-4567, 555-123-4567
    rf"){_END}"
)
# A number labelled as one of the shop's own (an order, a parcel, a product) is not personal data.
SHOP_NUMBER = re.compile(
    r"(?:order|tracking|waybill|parcel|invoice|receipt|sku|model|serial|ref(?:erence)?|item|"
    r"订单|单号|运单|快递|物流|发票|编号|型号|货号|序列号)"
    r"\s*(?:no\.?|number|num|#|id|code|号码?|编号)?\s*(?:is|was|[:：#=]|为|是)?\s*$",
    re.IGNORECASE,
)
CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CN_ID_SHAPE = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]")
PLACEHOLDERS = {"email": "[email]", "cn_id": "[id]", "card": "[card]", "phone": "[phone]"}


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


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _shop_number(match: re.Match) -> bool:
    return bool(SHOP_NUMBER.search(match.string[max(0, match.start() - 40) : match.start()]))


def _email_spelt(match: re.Match) -> bool:
    """Spelt-out forms need a bracketed "at" or a spelt "dot": "ordered at lumen.com" names a site, not a person."""
    return match.group("at").strip().lower() != "at" or bool(re.search(_SPELT_DOT, match.group(), re.IGNORECASE))


def _card(match: re.Match) -> bool:
    digits = _digits(match.group())
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and not _shop_number(match)


def _cn_id(match: re.Match) -> bool:
    number = re.sub(r"[ -]", "", match.group()).upper()
    return bool(CN_ID_SHAPE.fullmatch(number)) and cn_id_ok(number) and not _shop_number(match)


def _phone(match: re.Match) -> bool:
    n_digits = len(_digits(match.group()))
    if match.group("trunk") and not 9 <= n_digits <= 12:
        return False
    return 7 <= n_digits <= 15 and not _shop_number(match)


# Order matters: an ID number may pass Luhn, and so may a phone number with its country code (0086...); the
# phone patterns never match a card number's digits (they need a leading 1[3-9], 0 or +, and end there).
RULES: dict[str, tuple[tuple[re.Pattern, Callable[[re.Match], bool]], ...]] = {
    "email": ((EMAIL, lambda match: True), (EMAIL_SPELT, _email_spelt)),
    "cn_id": ((CN_ID, _cn_id),),
    "phone": ((PHONE, _phone),),
    "card": ((CARD, _card),),
}


def _nfkc(text: str) -> str:
    """`text` with each character that NFKC folds to one character folded (full-width digits, letters and
    punctuation, the ideographic space, circled digits): positions stay those of `text`. Characters that fold
    to several (㎏, ⑩) are kept as they are; personal data is not written with them."""
    if text.isascii():
        return text
    table = {}
    for char in set(text):
        folded = unicodedata.normalize("NFKC", char)
        if len(folded) == 1 and folded != char:
            table[ord(char)] = folded
    return text.translate(table) if table else text


def pii_redact(text: str, kinds: Iterable[str] | None = None) -> str:
    """`text` with the configured kinds of personal data replaced by a placeholder.

    Every rule runs on the NFKC form; a match overlapping one of an earlier rule is dropped. The replacements
    are then made in the text as written."""
    chosen = set(settings.CHATBOT_REDACT_PII if kinds is None else kinds)
    folded = _nfkc(text)
    found: list[tuple[int, int, str]] = []  # (start, end) in `folded`, which are those in `text`; placeholder
    for kind, rules in RULES.items():
        if kind not in chosen:
            continue
        for pattern, is_pii in rules:
            for match in pattern.finditer(folded):
                start, end = match.span()
                if is_pii(match) and not any(s < end and start < e for s, e, _ in found):
                    found.append((start, end, PLACEHOLDERS[kind]))
    pieces, last = [], 0
    for start, end, placeholder in sorted(found):
        pieces += [text[last:start], placeholder]
        last = end
    return "".join(pieces) + text[last:]
