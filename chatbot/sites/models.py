import secrets

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from chatbot.sites.origins import origins_parse

COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour as #rrggbb, e.g. #2453d6.")


def new_key() -> str:
    return secrets.token_urlsafe(12)


class Site(models.Model):
    """A shop website that embeds the chat widget: where it may run and how it looks."""

    name = models.CharField(max_length=100, help_text="Shown at the top of the chat panel.")
    key = models.CharField(max_length=64, unique=True, default=new_key, help_text="The snippet's data-site.")
    allowed_origins = models.TextField(
        help_text="One per line, exactly as the browser sends it: https://shop.example.com or "
        "http://localhost:8080 (scheme, host and port; no path, no wildcard)."
    )
    colour = models.CharField(max_length=7, default="#2453d6", validators=[COLOUR], help_text="Launcher and buttons.")
    greeting_en = models.CharField("greeting (English)", max_length=300, blank=True)
    greeting_zh = models.CharField("greeting (Chinese)", max_length=300, blank=True)
    is_active = models.BooleanField("active", default=True, help_text="Inactive: the widget says chat is unavailable.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        try:
            return origins_parse(self.allowed_origins)
        except ValidationError:
            return []

    def clean(self) -> None:
        try:
            self.allowed_origins = "\n".join(origins_parse(self.allowed_origins))
        except ValidationError as error:
            raise ValidationError({"allowed_origins": error.messages}) from None
        if not self.allowed_origins:
            raise ValidationError({"allowed_origins": "List at least one origin."})
