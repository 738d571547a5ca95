"""Origins as a browser sends them: scheme://host[:port], nothing else."""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

_HOST = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$"
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_normalise(value: str) -> str:
    """`https://Shop.example.com:443` -> `https://shop.example.com`; a clear ValidationError for anything else."""
    text = value.strip()
    if "*" in text:
        raise ValidationError(f"“{text}”: wildcards are not allowed; list each origin exactly.")
    if not re.match(r"^https?://", text, re.IGNORECASE):
        raise ValidationError(f"“{text}”: an origin starts with http:// or https://, e.g. https://shop.example.com")
    parts = urlsplit(text)
    if parts.path or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValidationError(f"“{text}”: an origin has no path, not even “/”: scheme://host[:port] only.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"“{text}”: an origin has no user name or password.")
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if not host or not _HOST.match(host):
        raise ValidationError(f"“{text}”: “{parts.netloc}” is not a host name.")
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"“{text}”: the port must be a number from 1 to 65535.") from None
    scheme = parts.scheme.lower()
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def origins_parse(text: str) -> list[str]:
    """One origin per line; every bad line is reported, not only the first."""
    found, errors = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            found.append(origin_normalise(line))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return list(dict.fromkeys(found))
