from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "chatbot.knowledge"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from chatbot.knowledge.selectors import pairs_changed

        post_save.connect(pairs_changed, sender="knowledge.QAPair", dispatch_uid="pairs_changed_save")
        post_delete.connect(pairs_changed, sender="knowledge.QAPair", dispatch_uid="pairs_changed_delete")
        post_save.connect(pairs_changed, sender="knowledge.FollowUp", dispatch_uid="followups_changed_save")
        post_delete.connect(pairs_changed, sender="knowledge.FollowUp", dispatch_uid="followups_changed_delete")
