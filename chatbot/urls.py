from django.conf import settings
from django.contrib import admin
from django.urls import path

from chatbot import views
from chatbot.console.views import console_page
from chatbot.conversations.views import chat_page
from chatbot.dashboard.views import dashboard_view
from chatbot.login import ThrottledLoginForm
from chatbot.sites.views import widget_config

admin.site.site_header = f"{settings.CHATBOT_SHOP_NAME} support bot"
admin.site.site_title = "Support bot admin"
admin.site.index_title = "Knowledge base, conversations and models"
admin.site.login_form = ThrottledLoginForm
admin.site.index_template = "admin/index_with_dashboard.html"

urlpatterns = [
    path("", chat_page, name="chat"),
    path("widget/<str:key>/config", widget_config, name="widget-config"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="dashboard"),
    path("console/", console_page, name="console"),
    path("admin/", admin.site.urls),
]
