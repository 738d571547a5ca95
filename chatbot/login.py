"""Admin log-in throttling: failures are counted per account and per address in the cache (Redis in production,
so every web process sees the same counts), and past the limit a log-in is refused, right password or not,
until the lock-out time has passed. A successful log-in clears its account's count."""

import hashlib
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest

PREFIX = "chatbot:login"


def _keys(*, username: str, address: str) -> list[tuple[str, int]]:
    """(counter key, the failures it allows) for the account and for the address."""
    account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()  # no log-in names in Redis
    return [
        (f"{PREFIX}:account:{account}", settings.CHATBOT_LOGIN_MAX_FAILURES_PER_ACCOUNT),
        (f"{PREFIX}:address:{address}", settings.CHATBOT_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ]


def _address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def login_failure_record(*, username: str, address: str) -> None:
    lockout = settings.CHATBOT_LOGIN_LOCKOUT_SECONDS
    for key, limit in _keys(username=username, address=address):
        cache.add(key, 0, timeout=lockout)  # the window starts at the first failure
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            failures = 1
            cache.add(key, failures, timeout=lockout)
        if failures >= limit:
            cache.add(f"{key}:locked", time.time() + lockout, timeout=lockout)


def login_locked_seconds(*, username: str, address: str) -> float:
    """Seconds until a log-in of this account from this address is allowed again (0: allowed now)."""
    until = [cache.get(f"{key}:locked") for key, _ in _keys(username=username, address=address)]
    return max([value - time.time() for value in until if value is not None], default=0.0)


def login_success_record(*, username: str) -> None:
    key = _keys(username=username, address="")[0][0]
    cache.delete_many([key, f"{key}:locked"])


@receiver(user_login_failed, dispatch_uid="chatbot_login_failed")
def _failed(sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any) -> None:
    login_failure_record(username=str(credentials.get("username") or ""), address=_address(request))


@receiver(user_logged_in, dispatch_uid="chatbot_logged_in")
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    login_success_record(username=user.get_username())


class ThrottledLoginForm(AdminAuthenticationForm):
    """The admin's log-in form, refusing before the password is even checked while the account or the address
    is locked out."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        seconds = login_locked_seconds(username=username, address=_address(self.request))
        if seconds > 0:
            minutes = max(1, math.ceil(seconds / 60))
            raise ValidationError(
                "Too many failed log-in attempts. Try again in %(minutes)d minute(s).",
                code="throttled",
                params={"minutes": minutes},
            )
        return super().clean()
