from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "chatbot.sites"
    label = "shop_sites"  # django.contrib.sites owns the label "sites"
    verbose_name = "Sites (embedded widget)"
