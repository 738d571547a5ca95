from contextvars import ContextVar
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.html import format_html

from chatbot.sites.models import Site

# the host as this admin request reached it, for the snippet (per request: the ModelAdmin is shared)
_base: ContextVar[str] = ContextVar("site_admin_base", default="")


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "origins_list", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "key", "allowed_origins")
    readonly_fields = ("snippet", "created_at")
    fieldsets = (
        (None, {"fields": ("name", "key", "allowed_origins", "is_active")}),
        ("Look", {"fields": ("colour", "greeting_en", "greeting_zh")}),
        ("Install", {"fields": ("snippet", "created_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Site | None = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "key") if obj else self.readonly_fields

    @admin.display(description="allowed origins")
    def origins_list(self, site: Site) -> str:
        return ", ".join(site.origins)

    @admin.display(description="snippet for the site's pages")
    def snippet(self, site: Site) -> str:
        if not site.pk:
            return "Save the site to get its snippet."
        src = _base.get().rstrip("/") + static("chat/widget.js")
        tag = f'<script src="{src}" data-site="{site.key}" async></script>'
        return format_html(
            '<code class="site-snippet">{}</code><p class="help">Paste before &lt;/body&gt; on every page of the '
            "site. The page's language (&lt;html lang&gt;) picks English or Chinese. If the site has a "
            "Content-Security-Policy, allow this host in script-src, style-src and connect-src (wss:).</p>",
            tag,
        )

    def get_form(self, request: HttpRequest, obj: Any | None = None, change: bool = False, **kwargs: Any) -> Any:
        _base.set(request.build_absolute_uri("/"))
        return super().get_form(request, obj, change, **kwargs)
