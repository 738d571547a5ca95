from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "chatbot.console"
    verbose_name = "People in the loop"
