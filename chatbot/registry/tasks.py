from celery import shared_task

from chatbot.registry.models import TrainingRun
from chatbot.registry.services import training_run_create, training_run_execute


@shared_task(acks_late=True, reject_on_worker_lost=False)
def train_model_task(run_id: int) -> str:
    run = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).first()
    if run is None:
        return "not queued"
    return training_run_execute(run).status


@shared_task
def scheduled_retrain_task() -> int:
    return training_run_create(trigger=TrainingRun.Trigger.SCHEDULE).pk
