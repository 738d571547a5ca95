from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "chatbot.review"
    verbose_name = "Review queue"
