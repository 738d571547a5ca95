from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "chatbot.knowledge"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from chatbot.knowledge.selectors import pairs_changed

        # what the pairs cache holds: the pairs, their answers, follow-ups and questions in each language
        for model in ("QAPair", "PairAnswer", "FollowUp", "AlternateQuestion"):
            post_save.connect(pairs_changed, sender=f"knowledge.{model}", dispatch_uid=f"{model}_changed_save")
            post_delete.connect(pairs_changed, sender=f"knowledge.{model}", dispatch_uid=f"{model}_changed_delete")
