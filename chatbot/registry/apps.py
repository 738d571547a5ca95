from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "chatbot.registry"
    verbose_name = "Models and training"
