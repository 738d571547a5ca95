"""The review queue: what needs a human, ranked and grouped; the operator's actions; the admin pages."""

import json

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chatbot.conversations.answering import message_answer
from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample, QAPair
from chatbot.redis_client import redis_client, redis_key
from chatbot.registry.dataset import dataset_build
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.review.models import ReviewItem
from chatbot.review.queue import review_queue_sync
from chatbot.review.services import review_suggestion_add
from tests.e2e import UNANSWERABLE

pytestmark = pytest.mark.django_db
QUEUE = "admin:review_reviewitem_changelist"


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("operator", "op@example.com", "pw-unused-123"))
    return client


def asked(text: str, *, helpful: bool | None = None) -> Message:
    """A customer message answered by the model in service, with the customer's feedback."""
    customer = Message.objects.create(
        conversation=Conversation.objects.create(), sender="customer", text=text, client_id="c1"
    )
    bot = message_answer(customer.pk)
    if helpful is not None:
        Message.objects.filter(pk=bot.pk).update(helpful=helpful)
    return customer


def item(message: Message) -> ReviewItem:
    return ReviewItem.objects.get(message=message)


def test_it_queues_what_needs_a_human_and_ranks_feedback_and_unanswered_first():
    # given
    unanswered = asked(UNANSWERABLE)
    thumbs_down = asked("where is my parcel", helpful=False)
    fine = asked("where is my parcel")
    # when
    review_queue_sync()
    # then
    assert item(unanswered).needs_review and item(unanswered).no_answer
    assert item(thumbs_down).needs_review and item(thumbs_down).negative_feedback
    assert not item(fine).needs_review
    assert item(thumbs_down).priority > item(fine).priority


def test_a_thumbs_down_after_the_answer_sends_the_message_to_the_queue():
    message = asked("where is my parcel")
    review_queue_sync()
    assert not item(message).needs_review
    Message.objects.filter(reply_to=message).update(helpful=False)  # "none of these" sends the same
    review_queue_sync()
    assert item(message).needs_review and item(message).negative_feedback


def test_it_groups_similar_messages_by_the_models_embedding():
    # the thumbs down puts both in the queue whatever the model's confidence
    first = asked("do you offer student discounts", helpful=False)
    second = asked("is there a discount for students", helpful=False)
    other = asked(UNANSWERABLE)
    review_queue_sync()
    assert item(first).cluster == item(second).cluster == first.pk
    assert item(first).cluster_size == 2 and item(other).cluster != first.pk


def test_it_attaches_messages_to_a_pair_through_the_admin_and_they_become_training_data(operator):
    # given: two related messages in the queue
    messages = [asked("has my parcel been sent off yet", helpful=False), asked("parcel not sent yet?", helpful=False)]
    pair = QAPair.objects.get(question="Where is my order?")
    before = dataset_build().counts["reviewed_messages"]
    review_queue_sync()  # what a worker does shortly after the answers (review_queue_sync_task)
    ids = [item(m).pk for m in messages]
    # when: the action shows its page, then applies
    page = operator.post(reverse(QUEUE), {"action": "attach_to_pair", "_selected_action": ids})
    assert page.status_code == 200 and b"Attach to a Q&amp;A pair" in page.content
    done = operator.post(
        reverse(QUEUE), {"action": "attach_to_pair", "_selected_action": ids, "apply": "1", "pair": pair.pk}
    )
    # then
    assert done.status_code == 302
    assert {i.status for i in ReviewItem.objects.filter(pk__in=ids)} == {ReviewItem.Status.ATTACHED}
    assert set(AlternateQuestion.objects.filter(pair=pair, source="log").values_list("text", flat=True)) == {
        m.text for m in messages
    }
    assert dataset_build().counts["reviewed_messages"] == before + 2
    queue = operator.get(reverse(QUEUE))
    assert messages[0].text not in queue.content.decode()


def test_it_creates_a_pair_from_messages_marks_out_of_scope_and_ignores(operator):
    new, alt, off, noise = (
        asked(t, helpful=False)
        for t in ("do you sell refurbished laptops", "any refurbished laptops for sale", "who won the football", "asdf")
    )
    review_queue_sync()
    # when
    operator.post(
        reverse(QUEUE),
        {
            "action": "create_pair",
            "_selected_action": [item(new).pk, item(alt).pk],
            "apply": "1",
            "question": new.text,
            "answer": "Yes, in the Outlet section.",
            "language": "en",
            "category": "products",
        },
    )
    operator.post(reverse(QUEUE), {"action": "mark_out_of_scope", "_selected_action": [item(off).pk]})
    operator.post(reverse(QUEUE), {"action": "ignore", "_selected_action": [item(noise).pk]})
    # then
    pair = QAPair.objects.get(question=new.text)
    assert list(pair.alternates.values_list("text", "source")) == [(alt.text, "log")]
    assert item(new).status == ReviewItem.Status.NEW_PAIR and item(new).pair == pair
    assert OutOfScopeExample.objects.get(text=off.text).source == "log"
    assert item(off).status == ReviewItem.Status.OUT_OF_SCOPE and item(noise).status == ReviewItem.Status.IGNORED
    assert not ReviewItem.objects.filter(status=ReviewItem.Status.PENDING, message__in=[new, alt, off, noise]).exists()


def person_answered(*questions: str, answer: str, conversation: Conversation | None = None) -> Message:
    """A conversation a person holds, as the console stores it: the customer's messages, then the operator's reply."""
    conversation = conversation or Conversation.objects.create()
    for n, text in enumerate(questions):
        Message.objects.create(
            conversation=conversation, sender="customer", text=text, client_id=f"p{n}-{text[:20]}", for_person=True
        )
    person, _ = User.objects.get_or_create(username="ada", defaults={"first_name": "Ada", "is_staff": True})
    return Message.objects.create(conversation=conversation, sender="operator", operator=person, text=answer)


def test_an_operators_answer_is_a_suggested_pair_grouped_with_similar_questions_and_accepted_edited(operator):
    # given: a person answered a question the bot could not, and another customer asked the same of the bot
    reply = person_answered("can I change the delivery address after ordering", answer="Yes, until it ships.")
    suggested = review_suggestion_add(operator_message_id=reply.pk)
    similar = asked("can I change my delivery address after I ordered", helpful=False)
    # when: a worker syncs the queue
    review_queue_sync()
    # then: one group, the person's answer shown with it, ranked with the unanswered
    suggested.refresh_from_db()
    assert (suggested.kind, suggested.needs_review, suggested.status) == ("suggested", True, "pending")
    assert suggested.cluster == item(similar).cluster == suggested.message_id and suggested.cluster_size == 2
    assert suggested.priority >= 2.0
    group = operator.get(reverse(QUEUE) + f"?cluster={suggested.cluster}").content.decode()
    assert similar.text in group and suggested.text in group and "Yes, until it ships." in group
    assert "suggested pair" in group and "Ada" in group
    # when: accept: the form starts from the person's answer, the reviewer edits it
    ids = [suggested.pk, item(similar).pk]
    form = operator.post(reverse(QUEUE), {"action": "create_pair", "_selected_action": ids}).content.decode()
    assert "Yes, until it ships.</textarea>" in form and suggested.text in form
    done = operator.post(
        reverse(QUEUE),
        {
            "action": "create_pair",
            "_selected_action": ids,
            "apply": "1",
            "question": suggested.text,
            "answer": "Yes, until it ships: change it under My orders.",
            "language": "en",
            "category": "orders",
        },
    )
    # then: a new pair with the edited answer, the similar question as its alternate
    assert done.status_code == 302
    pair = QAPair.objects.get(question=suggested.text)
    assert pair.answer_texts() == {"en": "Yes, until it ships: change it under My orders."}
    assert list(pair.alternates.values_list("text", flat=True)) == [similar.text]
    assert {i.status for i in ReviewItem.objects.filter(pk__in=ids)} == {ReviewItem.Status.NEW_PAIR}


def test_a_suggested_pair_is_attached_or_dismissed_and_only_undecided_questions_take_a_persons_answer(operator):
    # given: two messages answered at once; a question the bot had answered before the hand-off
    attach = review_suggestion_add(
        operator_message_id=person_answered("hi", "my parcel never came", answer="It is on its way.").pk
    )
    earlier = asked("the gift wrap was torn", helpful=False)
    review_queue_sync()
    dismiss = review_suggestion_add(
        operator_message_id=person_answered(answer="Sorry, we will refund it.", conversation=earlier.conversation).pk
    )
    pair = QAPair.objects.get(question="Where is my order?")
    # when
    operator.post(
        reverse(QUEUE), {"action": "attach_to_pair", "_selected_action": [attach.pk], "apply": "1", "pair": pair.pk}
    )
    operator.post(reverse(QUEUE), {"action": "ignore", "_selected_action": [dismiss.pk]})
    # then: the customer's words together are the question; the earlier item now carries the person's answer
    attach.refresh_from_db()
    assert attach.text == "hi my parcel never came" and attach.status == ReviewItem.Status.ATTACHED
    assert pair.alternates.filter(text="hi my parcel never came", source="log").exists()
    assert dismiss.pk == item(earlier).pk and item(earlier).status == ReviewItem.Status.IGNORED
    assert item(earlier).operator_answer.text == "Sorry, we will refund it."
    assert not QAPair.objects.filter(translations__text__startswith="Sorry, we will refund").exists()
    # and: a later reply to nothing new, or to a decided question, suggests nothing
    again = person_answered(answer="Anything else?", conversation=earlier.conversation)
    assert review_suggestion_add(operator_message_id=again.pk) is None
    later = Message.objects.create(conversation=earlier.conversation, sender="customer", text="ok", client_id="x")
    ReviewItem.objects.create(message=later, status=ReviewItem.Status.IGNORED)
    assert (
        review_suggestion_add(operator_message_id=person_answered(answer="Bye", conversation=earlier.conversation).pk)
        is None
    )


def test_opening_the_queue_runs_no_model_and_asks_a_worker_for_one_refresh(operator, settings):
    # given: an answered message that no worker has looked at yet, and no refresh asked for recently
    message = asked("my parcel came broken, what now", helpful=False)
    broker, training_queue = redis.Redis.from_url(settings.CELERY_BROKER_URL), "training"
    redis_client().delete(redis_key("review-refresh"))
    waiting = broker.llen(training_queue)
    # when: an operator opens the queue, twice
    first, second = operator.get(reverse(QUEUE)), operator.get(reverse(QUEUE))
    # then: the page shows what is stored (nothing was computed in the request) and one refresh is queued
    assert first.status_code == second.status_code == 200
    assert not ReviewItem.objects.filter(message=message).exists()
    assert broker.llen(training_queue) == waiting + 1
    task = json.loads(broker.lindex(training_queue, 0))
    assert task["headers"]["task"] == "chatbot.review.tasks.review_queue_sync_task"


def test_the_queue_shows_reasons_candidates_groups_and_the_transcript_link(operator):
    message = asked("is there a discount for students", helpful=False)
    review_queue_sync()
    page = operator.get(reverse(QUEUE) + "?reason=negative_feedback").content.decode()
    assert message.text in page and "thumbs down" in page
    assert reverse("admin:conversations_conversation_change", args=[message.conversation_id]) in page
    assert "review-candidates" in page and f"?cluster={message.pk}" in page
    group = operator.get(reverse(QUEUE) + f"?cluster={message.pk}").content.decode()
    assert message.text in group


def test_the_training_run_and_model_version_pages_show_progress_curves_gate_and_trade_off(operator):
    version = ModelVersion.objects.get(is_active=True)
    run = TrainingRun.objects.exclude(history=[]).first()
    run.gate = {
        "passed": False,
        "margin": 0.02,
        "active_version": version.pk,
        "n_disagreements": 1,
        "checks": [{"metric": "accuracy", "candidate": 0.5, "active": 0.9, "delta": -0.4, "passed": False}],
        "candidate": {"n": 1},
        "active": {"n": 1},
        "disagreements": [
            {
                "text": "where is my parcel",
                "gold": str(QAPair.objects.first().pk),
                "candidate": "oos",
                "candidate_score": 0.1,
                "active": str(QAPair.objects.first().pk),
                "active_score": 0.9,
            }
        ],
    }
    run.save()
    page = operator.get(reverse("admin:registry_trainingrun_change", args=[run.pk])).content.decode()
    assert "<svg" in page and "training loss" in page and "where is my parcel" in page and "data-progress-url" in page
    progress = operator.get(reverse("admin:registry_trainingrun_progress", args=[run.pk])).json()
    assert progress["finished"] and progress["progress"] == 1.0 and "<svg" in progress["chart"]
    page = operator.get(reverse("admin:registry_modelversion_change", args=[version.pk])).content.decode()
    assert "coverage" in page and "precision" in page and "Set the operating point" in page
    operator.post(reverse("admin:registry_modelversion_threshold", args=[version.pk]), {"threshold": "0.4"})
    version.refresh_from_db()
    assert version.threshold == 0.4
    assert operator.get(reverse("admin:registry_trainingrun_changelist")).status_code == 200
