"""Text normalisation and hashed n-gram features, for Chinese and English alike."""

import re
import unicodedata
import zlib

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]")


def normalise(text: str) -> str:
    # NFKC folds full-width letters, digits and punctuation to half-width.
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def ngrams(text: str) -> list[str]:
    """CJK runs: char 1-3 grams; other words: <word> char 3-5 grams, word 1-2 grams."""
    grams: list[str] = []
    words: list[str] = []
    for token in _TOKEN.findall(normalise(text)):
        if _CJK_RUN.match(token):
            grams += _char_grams(token, 1, 3)
            words.append("#")  # a CJK run breaks word bigrams
        else:
            grams += _char_grams(f"<{token}>", 3, 5)
            words.append(token)
    grams += [f"w:{w}" for w in words if w != "#"]
    grams += [f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False) if "#" not in (a, b)]
    return grams


def _char_grams(token: str, low: int, high: int) -> list[str]:
    out = [token[i : i + n] for n in range(low, high + 1) for i in range(len(token) - n + 1)]
    return out or [token]


def hashed_ngrams(text: str, n_buckets: int) -> list[int]:
    # crc32 is stable across processes, unlike hash().
    return [zlib.crc32(g.encode()) % n_buckets for g in ngrams(text)]


def language(text: str) -> str:
    """ "zh" when the text has a Chinese character, else "en": the language of a reply, of a pair, and of the
    encoder weights in fusion (BENCHMARKS.md compares this rule with a share of the characters)."""
    return "zh" if _CJK_RUN.search(text) else "en"
