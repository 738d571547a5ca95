import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from chatbot.conversations.answering import message_answer
from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.services import answer_payload, message_receive
from chatbot.knowledge.models import FollowUp, QAPair
from chatbot.knowledge.services import qa_export_file, qa_import
from chatbot.knowledge.text import answer_plain, detect_language
from tests.admin_forms import pair_form

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_pairs_cache")]


def pair(question: str, language: str = "en") -> QAPair:
    return QAPair.objects.create_topic(question=question, answers={language: f"About {question}"})


def ask(conversation: Conversation, client_id: str, text: str, suggestion: int | None = None) -> dict:
    message, _ = message_receive(
        conversation=conversation, client_id=client_id, text=text, suggestion=suggestion, enqueue=lambda _: None
    )
    return answer_payload(message_answer(message.pk))


def test_it_refuses_a_pair_as_its_own_followup():
    a = pair("Follow-up self A")
    with pytest.raises(ValidationError):
        FollowUp(pair=a, followup=a).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(pair=a, followup=a)


def test_it_allows_cycles_and_deleting_a_pair_removes_it_from_others_followups():
    a, b, c = pair("Cycle A"), pair("Cycle B"), pair("Cycle C")
    FollowUp.objects.create(pair=a, followup=b)
    FollowUp.objects.create(pair=b, followup=a)
    FollowUp.objects.create(pair=c, followup=b)
    assert list(b.followups.all()) == [a]
    b.delete()
    assert not FollowUp.objects.filter(pair__in=[a, c]).exists()
    assert QAPair.objects.filter(pk__in=[a.pk, c.pk]).count() == 2


def test_an_answer_offers_its_followups_in_order_and_clicking_one_answers_it(django_capture_on_commit_callbacks):
    # given: a pair with two follow-ups, the second listed first, and an inactive one (saved as a commit would:
    # the workers' cache of pairs and follow-ups is renewed after commit)
    start = QAPair.objects.get(question="What is your return policy?")
    with django_capture_on_commit_callbacks(execute=True):
        first, second = pair("Ordered follow-up one"), pair("Ordered follow-up two")
        hidden = QAPair.objects.create_topic(question="Hidden follow-up", answers={"en": "x"}, is_active=False)
        FollowUp.objects.filter(pair=start).delete()
        FollowUp.objects.create(pair=start, followup=second, order=2)
        FollowUp.objects.create(pair=start, followup=first, order=1)
        FollowUp.objects.create(pair=start, followup=hidden, order=0)
    conversation = Conversation.objects.create()
    # when: the customer picks the pair
    answer = ask(conversation, "m1", start.question, suggestion=start.pk)
    # then: its active follow-ups, in order, as `followups`; none as `suggestions`
    assert answer["outcome"] == "answer" and answer["suggestions"] == []
    assert answer["followups"] == [
        {"id": first.pk, "question": first.question},
        {"id": second.pk, "question": second.question},
    ]
    # when: a follow-up button is clicked (the suggestion path)
    followed = ask(conversation, "m2", first.question, suggestion=first.pk)
    # then: it is answered with that pair, and the bot message keeps what it offered
    assert followed["text"] == first.answer_texts()["en"]
    bot = Message.objects.get(pk=answer["message_id"])
    assert [item["id"] for item in bot.suggestions] == [first.pk, second.pk]


def test_a_demo_topic_asked_in_chinese_offers_its_followups_in_chinese():
    answer = ask(Conversation.objects.create(), "z1", "退货政策是什么？")
    assert answer["outcome"] == "answer"
    assert answer["text"] == answer_plain(
        QAPair.objects.get(question="What is your return policy?").answer_texts()["zh"]
    )
    questions = [item["question"] for item in answer["followups"]]
    assert questions == ["怎么申请退货？", "退货运费谁承担？", "退款多久能到账？"]


def test_the_demo_has_followups_for_at_least_ten_topics_each_with_a_question_in_both_languages():
    topics = QAPair.objects.filter(followup_links__isnull=False).distinct()
    assert topics.count() >= 10
    for link in FollowUp.objects.select_related("followup"):
        questions = [link.followup.question, *link.followup.alternates.values_list("text", flat=True)]
        assert {detect_language(text) for text in questions} == {"en", "zh"}, link.followup.question


def test_import_links_followups_by_question_including_rows_further_down():
    rows = [
        {"question": "Import FU one", "answer": "1", "followups": "Import FU two\nWhere is my order?"},
        {"question": "Import FU two", "answer": "2", "followups": ["Import FU one"]},
    ]
    report = qa_import(data=json.dumps(rows), file_format="json")
    assert report.ok, report.errors
    one = QAPair.objects.get(question="Import FU one")
    assert [link.followup.question for link in one.followup_links.all()] == ["Import FU two", "Where is my order?"]
    assert [p.question for p in QAPair.objects.get(question="Import FU two").followups.all()] == ["Import FU one"]


@pytest.mark.parametrize(
    ("followups", "error"),
    [
        ("No pair asks this", "no pair has the question “No pair asks this”"),
        ("Import bad self", "a pair cannot be its own follow-up"),
        (42, "followups must be text (one per line) or a list of strings"),
    ],
)
def test_import_refuses_unknown_or_self_followups_as_a_row_error(followups, error):
    rows = [
        {"question": "Import good row", "answer": "ok"},
        {"question": "Import bad self", "answer": "x", "followups": followups},
    ]
    report = qa_import(data=json.dumps(rows), file_format="json")
    assert not report.ok
    assert any(line.startswith("row 2:") and error in line for line in report.errors), report.errors
    assert not QAPair.objects.filter(question__startswith="Import ").exists()


def test_a_file_without_a_followups_column_keeps_the_followups(tmp_path):
    start = QAPair.objects.get(question="What is your return policy?")
    before = list(start.followup_links.values_list("followup_id", flat=True))
    rows = [{"question": start.question, "answer": start.answer_texts()["en"], "language": "en"}]
    assert qa_import(data=json.dumps(rows), file_format="json").ok
    assert list(start.followup_links.values_list("followup_id", flat=True)) == before != []


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_export_carries_followups_and_imports_back(tmp_path, suffix):
    path = tmp_path / f"pairs.{suffix}"
    qa_export_file(path=path, queryset=QAPair.objects.filter(question__in=["What is your return policy?"]))
    text = path.read_text(encoding="utf-8")
    assert "How do I return an item?" in text and "followups" in text
    FollowUp.objects.filter(pair__question="What is your return policy?").delete()
    assert qa_import(data=text, file_format=suffix).ok
    start = QAPair.objects.get(question="What is your return policy?")
    assert [link.followup.question for link in start.followup_links.all()] == [
        "How do I return an item?",
        "Who pays for return shipping?",
        "When will I get my refund?",
    ]


def _inline_form(start: QAPair, followup_id: int) -> dict:
    return pair_form(
        start,
        **{
            "followup_links-TOTAL_FORMS": "1",
            "followup_links-0-followup": str(followup_id),
            "followup_links-0-order": "1",
        },
    )


def test_an_operator_adds_a_followup_in_the_admin_inline_and_cannot_add_the_pair_itself(operator_client):
    start, other = pair("Inline start"), pair("Inline other")
    url = f"/admin/knowledge/qapair/{start.pk}/change/"
    assert b"ollow-up questions (offered as buttons" in operator_client.get(url).content
    response = operator_client.post(url, _inline_form(start, start.pk))
    assert response.status_code == 200 and b"A pair cannot be its own follow-up." in response.content
    assert not start.followup_links.exists()
    response = operator_client.post(url, _inline_form(start, other.pk))
    assert response.status_code == 302
    assert list(start.followups.all()) == [other]
