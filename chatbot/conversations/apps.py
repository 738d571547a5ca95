from django.apps import AppConfig
from django.conf import settings


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        if settings.CHATBOT_INLINE_INFERENCE:
            # Embedded mode answers in the web process (services.answer_enqueue): its one exception to "the web
            # process never imports PyTorch". Loaded at start, so that the first customer does not wait for it.
            from chatbot.conversations import tasks  # noqa: F401
