"""One topic, several languages: a pair's answers per language, the reply in the customer's language (or another's
with a note), import and export of both formats, merging pairs, and the migration that merged the demo's twins."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chatbot.conversations.answering import message_answer
from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.replies import reply_compose
from chatbot.conversations.services import answer_payload, message_receive
from chatbot.knowledge import selectors
from chatbot.knowledge.models import AlternateQuestion, FollowUp, PairAnswer, QAPair
from chatbot.knowledge.resources import QAPairResource
from chatbot.knowledge.services import pairs_merge, qa_export_file, qa_import
from chatbot.knowledge.text import answer_plain, detect_language
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.pipeline import Redirected, model_version_load
from chatbot.review.models import ReviewItem
from chatbot.review.queue import review_queue_sync
from tests.admin_forms import pair_form
from tests.fresh_database import fresh_database_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_pairs_cache")]
ROOT = Path(__file__).resolve().parent.parent
CHANGELIST = "/admin/knowledge/qapair/"


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("topics-operator", "op@example.com", "pw-unused-123"))
    return client


def clicked(pair: QAPair, text: str) -> dict:
    """The customer clicks `pair` where the bot offered it, the button's text being `text`: the answer frame."""
    conversation = Conversation.objects.create()
    Message.objects.create(
        conversation=conversation, sender="bot", text="offer", suggestions=[{"id": pair.pk, "question": text}]
    )
    message, _ = message_receive(
        conversation=conversation, client_id="c1", text=text, suggestion=pair.pk, enqueue=lambda _: None
    )
    assert message.suggested_pair_id is not None
    return answer_payload(message_answer(message.pk))


def asked(text: str) -> dict:
    """A customer message answered by the model in service: the answer frame."""
    message, _ = message_receive(
        conversation=Conversation.objects.create(), client_id="c1", text=text, suggestion=None, enqueue=lambda _: None
    )
    return answer_payload(message_answer(message.pk))


# --- the reply's language ---------------------------------------------------------------------------
def test_the_same_topic_is_answered_in_the_language_of_the_question():
    topic = QAPair.objects.get(question="Where is my order?")
    answers = topic.answer_texts()
    english, chinese = asked("Where is my order?"), asked("我的订单到哪里了？")
    assert english["outcome"] == chinese["outcome"] == "answer"
    assert Message.objects.get(pk=english["message_id"]).pair == Message.objects.get(pk=chinese["message_id"]).pair
    assert english["text"] == answer_plain(answers["en"]) and chinese["text"] == answer_plain(answers["zh"])


def test_a_topic_without_an_answer_in_the_customers_language_answers_in_another_with_a_note():
    pair = QAPair.objects.create_topic(question="Do you sell gift cards?", answers={"en": "Yes, from 10 to 500 euros."})
    chinese = clicked(pair, "你们有礼品卡吗")
    assert chinese["text"] == "（这个问题暂时没有中文回答，以下是英文回答。）\n\nYes, from 10 to 500 euros."
    assert clicked(pair, "gift cards?")["text"] == "Yes, from 10 to 500 euros."
    PairAnswer.objects.create(pair=pair, language="zh", text="有，面值 10 到 500 欧元。")
    selectors._cache["loaded_at"] = float("-inf")
    assert clicked(pair, "你们有礼品卡吗")["text"] == "有，面值 10 到 500 欧元。"
    only_chinese = QAPair.objects.create_topic(question="能开发票吗？", answers={"zh": "可以。"})
    assert clicked(only_chinese, "can I get an invoice")["text"] == (
        "(This answer is not available in English yet; here it is in Chinese.)\n\n可以。"
    )


def test_buttons_show_each_topics_question_in_the_customers_language():
    returns = QAPair.objects.get(question="What is your return policy?")
    shipping = QAPair.objects.get(question="How much does shipping cost?")
    ranked = [(str(returns.pk), 0.4), (str(shipping.pk), 0.3)]
    chinese = reply_compose(text="我想问一下", ranked=ranked, decide=lambda _ranked, _language: False)
    english = reply_compose(text="a question", ranked=ranked, decide=lambda _ranked, _language: False)
    assert [s["question"] for s in chinese.suggestions][:2] == ["退货政策是什么？", "运费怎么收？"]
    assert [s["question"] for s in english.suggestions][:2] == [returns.question, shipping.question]
    assert detect_language(chinese.suggestions[-1]["question"]) == "zh"  # the hand-off pair, in Chinese too
    assert chinese.text.startswith("抱歉")


def test_the_reply_is_decided_by_the_rule_of_the_customers_language():
    # given: the model in service, with a stricter rule of its own for Chinese
    model = model_version_load(ModelVersion.objects.get(is_active=True))
    model.rejection = model.rejection.at(0.5, 0.0, {"zh": (0.95, 0.0)})
    topic = QAPair.objects.get(question="Where is my order?")
    ranked = [(str(topic.pk), 0.8), (str(QAPair.objects.get(question="What is your return policy?").pk), 0.1)]
    # when / then: the same ranking is an answer in English and "not sure" in Chinese
    english = reply_compose(text="where is my parcel", ranked=ranked, decide=model.decide)
    chinese = reply_compose(text="我的包裹在哪里", ranked=ranked, decide=model.decide)
    assert (english.outcome, english.pair) == ("answer", topic)
    assert chinese.outcome == "unsure" and chinese.text.startswith("抱歉")


def test_the_worker_reads_answers_from_the_pairs_cache_without_a_query():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pairs = selectors.active_pairs()
    with CaptureQueriesContext(connection) as queries:
        texts = [selectors.pair_answer(pair, "zh") for pair in pairs.values()]
    assert len(texts) >= 64 and all(language == "zh" for _, language in texts)
    assert queries.captured_queries == []


# --- the admin's inline -----------------------------------------------------------------------------
def test_the_pair_page_edits_one_answer_per_language(operator_client):
    operator = operator_client  # an operator, not a superuser: the Operators group may edit answers
    pair = QAPair.objects.create_topic(question="Do you engrave?", answers={"en": "Yes, for 5 euros."})
    url = f"{CHANGELIST}{pair.pk}/change/"
    page = operator.get(url).content.decode()
    assert "Yes, for 5 euros." in page and 'value="zh" selected' in page  # the empty row is the missing language
    assert 'value="en" selected' in operator.get(f"{CHANGELIST}add/").content.decode()
    # when: the Chinese translation is added
    response = operator.post(url, pair_form(pair, {"en": "Yes, for 5 euros.", "zh": "可以，5 欧元。"}))
    # then
    assert response.status_code == 302
    assert pair.answer_texts() == {"en": "Yes, for 5 euros.", "zh": "可以，5 欧元。"}
    # when: every answer is emptied, or the same language given twice
    emptied = operator.post(url, pair_form(pair, {"en": "", "zh": ""}))
    assert emptied.status_code == 200 and "A pair needs an answer in at least one language." in emptied.content.decode()
    twice = pair_form(pair, **{"translations-1-language": "en"})
    assert operator.post(url, twice).status_code == 200
    assert pair.answer_texts() == {"en": "Yes, for 5 euros.", "zh": "可以，5 欧元。"}


# --- import and export ------------------------------------------------------------------------------
def test_the_csv_has_a_column_per_language_and_imports_back(tmp_path):
    path = tmp_path / "pairs.csv"
    qa_export_file(path=path, queryset=QAPair.objects.filter(question="Where is my order?"))
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["question", "answer_en", "answer_zh", "alternates", "category", "handoff", "followups"]
    assert rows[0]["answer_zh"] == QAPair.objects.get(question="Where is my order?").answer_texts()["zh"]
    assert "我的订单到哪里了？" in rows[0]["alternates"].splitlines()
    # a new topic in both languages, one only in Chinese, and an empty cell removes that language's answer
    columns = list(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerow(
        {"question": "Gift wrap?", "answer_en": "Yes.", "answer_zh": "可以包装。", "alternates": "礼品包装\nwrap it"}
    )
    writer.writerow({"question": "发票？", "answer_en": "", "answer_zh": "可以开。"})
    writer.writerow({**rows[0], "answer_zh": ""})
    report = qa_import(data=out.getvalue(), file_format="csv")
    assert report.ok, report.errors
    assert QAPair.objects.get(question="Gift wrap?").answer_texts() == {"en": "Yes.", "zh": "可以包装。"}
    assert QAPair.objects.get(question="发票？").answer_texts() == {"zh": "可以开。"}
    assert set(QAPair.objects.get(question="Where is my order?").answer_texts()) == {"en"}


def test_the_json_has_an_answers_object_and_the_one_language_format_still_imports():
    rows = [
        {"question": "Gift wrap?", "answers": {"en": "Yes.", "zh": "可以。"}, "alternates": ["包装吗"]},
        {"question": "Gift cards?", "answer": "Yes, online.", "language": "en"},
        {"question": "礼品卡？", "answer": "有。", "alternates": ["gift card"]},  # no language: the question's
    ]
    report = qa_import(data=json.dumps(rows), file_format="json")
    assert report.ok, report.errors
    assert QAPair.objects.get(question="Gift wrap?").answer_texts() == {"en": "Yes.", "zh": "可以。"}
    assert QAPair.objects.get(question="Gift cards?").answer_texts() == {"en": "Yes, online."}
    assert QAPair.objects.get(question="礼品卡？").answer_texts() == {"zh": "有。"}
    # the old format sets one language and keeps the others
    again = qa_import(data=json.dumps([{"question": "Gift wrap?", "answer": "Yes, free."}]), file_format="json")
    assert again.ok and QAPair.objects.get(question="Gift wrap?").answer_texts() == {"en": "Yes, free.", "zh": "可以。"}


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([{"question": "Q?", "answer_fr": "Oui."}], "unknown column(s) answer_fr"),
        ([{"question": "Q?", "answers": {"en": "", "zh": ""}}], "a pair needs an answer in at least one language"),
        ([{"question": "Q?", "answers": ["Yes"]}], '"answers" must be an object'),
        ([{"question": "Q?", "answer": "Oui.", "language": "fr"}], "language must be one of en, zh"),
        ([{"question": "Q?", "alternates": []}], "missing column(s): answer_en or answer_zh or answer"),
    ],
)
def test_bad_answer_columns_are_refused_and_save_nothing(rows, error):
    report = qa_import(data=json.dumps(rows), file_format="json")
    assert not report.ok and any(error in line for line in report.errors), report.errors
    assert not QAPair.objects.filter(question="Q?").exists()


def test_the_demo_file_is_one_entry_per_topic_in_the_format_the_benchmarks_read():
    topics = json.loads((ROOT / "chatbot/knowledge/demo/demo_qa.json").read_text(encoding="utf-8"))
    assert len(topics) == 64
    keys = ["question", "answers", "alternates", "category", "handoff", "followups"]
    assert all(list(topic) == keys and set(topic["answers"]) == {"en", "zh"} for topic in topics)
    questions = {topic["question"] for topic in topics}
    with open(ROOT / "bench/data/demo_paraphrases.csv", encoding="utf-8", newline="") as handle:
        labels = {row["label"] for row in csv.DictReader(handle)}
    assert labels - {"oos"} <= questions and len(labels) > 60


# --- merging ----------------------------------------------------------------------------------------
def test_merging_moves_everything_to_the_survivor_and_the_old_id_answers_with_its_answer():
    # given: a topic in English, its Chinese twin with a follow-up, pointed at by a follow-up, a conversation
    # and a review decision
    english = QAPair.objects.create_topic(question="Do you sell gift cards?", answers={"en": "Yes."})
    chinese = QAPair.objects.create_topic(question="有礼品卡吗？", answers={"zh": "有。", "en": "Yes (twin)."})
    AlternateQuestion.objects.create(pair=chinese, text="礼品卡怎么买")
    AlternateQuestion.objects.create(pair=english, text="礼品卡怎么买")  # in both: kept once
    returns = QAPair.objects.get(question="What is your return policy?")
    FollowUp.objects.create(pair=chinese, followup=returns)
    FollowUp.objects.create(pair=returns, followup=chinese, order=9)
    conversation = Conversation.objects.create()
    customer = Message.objects.create(
        conversation=conversation, sender="customer", text="礼品卡", suggested_pair=chinese
    )
    Message.objects.create(conversation=conversation, sender="bot", text="有。", reply_to=customer, pair=chinese)
    review = ReviewItem.objects.create(message=customer, status="attached", pair=chinese)
    # when
    merged = pairs_merge(survivor=english, merged=[chinese])
    # then
    assert merged == [chinese.pk]
    chinese.refresh_from_db()
    assert not chinese.is_active and chinese.merged_into == english
    assert english.answer_texts() == {"en": "Yes.", "zh": "有。"}  # the survivor's English answer stays
    assert sorted(english.alternates.values_list("text", flat=True)) == ["有礼品卡吗？", "礼品卡怎么买"]
    assert list(english.followups.all()) == [returns]
    assert returns.followup_links.filter(followup=english, order=9).exists()
    assert not FollowUp.objects.filter(followup=chinese).exists()
    assert set(Message.objects.filter(conversation=conversation).values_list("pair", "suggested_pair")) == {
        (None, english.pk),
        (english.pk, None),
    }
    review.refresh_from_db()
    assert review.pair == english
    assert TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, trigger="admin").exists()
    exported = QAPairResource().export(queryset=QAPair.objects.filter(pk__in=[english.pk, chinese.pk]))
    assert exported["question"] == [english.question]  # a redirect is no pair of its own in a file
    # the model in service still predicts the merged id: the reply is the survivor's, their scores added up
    selectors._cache["loaded_at"] = float("-inf")
    reply = reply_compose(
        text="有礼品卡吗",
        ranked=[(str(chinese.pk), 0.5), (str(english.pk), 0.3)],
        decide=lambda r, _language: r[0][1] > 0.7,
    )
    assert reply.outcome == "answer" and reply.pair == english and reply.text == "有。"


def test_a_merged_demo_topic_predicted_by_the_model_in_service_gets_the_survivors_answer():
    survivor = QAPair.objects.get(question="Where is my order?")
    merged = QAPair.objects.get(question="Tracking says delivered but I didn't get my package")
    pairs_merge(survivor=survivor, merged=[merged])
    selectors._cache["loaded_at"] = float("-inf")
    answer = asked(merged.question)  # the model was trained before the merge and predicts the merged id
    bot = Message.objects.get(pk=answer["message_id"])
    assert bot.candidates[0]["pair"] == survivor.pk and bot.pair == survivor
    assert answer["text"] == answer_plain(survivor.answer_texts()["en"])


def test_the_gate_judges_the_model_in_service_by_the_topics_it_answers_now():
    # given: a model trained when these were two labels, then merged into one topic
    survivor = QAPair.objects.get(question="Where is my order?")
    merged = QAPair.objects.get(question="Tracking says delivered but I didn't get my package")
    pairs_merge(survivor=survivor, merged=[merged])
    selectors._cache["loaded_at"] = float("-inf")
    current = model_version_load(ModelVersion.objects.get(is_active=True))
    everything = dict(current.predict([merged.question], k=len(current.labels))[0])
    assert max(everything, key=lambda label: everything[label]) == str(merged.pk)
    # when: the gate reads it
    judged = Redirected(current, selectors.pairs_view().redirects).predict([merged.question], k=3)[0]
    # then: it names the topic, with both labels' scores, and still ranks three distinct topics
    assert judged[0] == (str(survivor.pk), pytest.approx(everything[str(survivor.pk)] + everything[str(merged.pk)]))
    assert len({label for label, _ in judged}) == 3 and str(merged.pk) not in dict(judged)


def test_the_merge_action_asks_which_pair_stays_then_merges(operator):
    a = QAPair.objects.create_topic(question="Merge me A", answers={"en": "A."})
    b = QAPair.objects.create_topic(question="合并我 B", answers={"zh": "B。"})
    # when: the action is chosen
    page = operator.post(CHANGELIST, {"action": "merge", "_selected_action": [a.pk, b.pk]})
    # then: a confirmation page, nothing merged yet
    assert page.status_code == 200
    content = page.content.decode()
    assert "Merge into one topic" in content and f'name="survivor" value="{a.pk}"' in content
    assert QAPair.objects.filter(merged_into__isnull=False, pk__in=[a.pk, b.pk]).count() == 0
    # when: confirmed with B staying
    done = operator.post(
        CHANGELIST, {"action": "merge", "_selected_action": [a.pk, b.pk], "apply": "1", "survivor": str(b.pk)}
    )
    assert done.status_code == 302
    a.refresh_from_db()
    assert a.merged_into == b and not a.is_active
    assert b.answer_texts() == {"en": "A.", "zh": "B。"}
    assert list(b.alternates.values_list("text", flat=True)) == ["Merge me A"]


def test_a_new_pair_from_a_chinese_message_is_answered_in_chinese(operator):
    customer = Message.objects.create(
        conversation=Conversation.objects.create(), sender="customer", text="你们卖二手手机吗", client_id="c1"
    )
    Message.objects.filter(pk=message_answer(customer.pk).pk).update(helpful=False)
    review_queue_sync()
    item = ReviewItem.objects.get(message=customer)
    url = reverse("admin:review_reviewitem_changelist")
    form = operator.post(url, {"action": "create_pair", "_selected_action": [item.pk]})
    assert 'value="zh" selected' in form.content.decode()
    operator.post(
        url,
        {
            "action": "create_pair",
            "_selected_action": [item.pk],
            "apply": "1",
            "question": customer.text,
            "answer": "不卖，只卖新品。",
            "language": "zh",
            "category": "products",
        },
    )
    assert QAPair.objects.get(question=customer.text).answer_texts() == {"zh": "不卖，只卖新品。"}


# --- the migration ----------------------------------------------------------------------------------
def test_the_migration_moves_answers_and_merges_the_demos_twins_where_both_are_there():
    found = fresh_database_run("tests.migration_topics")
    old = json.loads((ROOT / "bench/data/demo_qa_pairs.json").read_text(encoding="utf-8"))
    alternates = (
        sum(len(pair["alternates"]) for pair in old if pair["question"] != "谢谢") + 63
    )  # + the twins' questions
    assert found == {
        "active": 65,  # 63 merged topics, "Thank you" without its twin, the shop's own pair
        "redirects": 63,
        "answers": {"en": 65, "zh": 63},
        "hello": ["en", "zh"],
        "hello_has_chinese_question": True,
        "chinese_redirect": "Hello",
        "thank_you": ["en"],
        "gift_cards": {"en": "Yes, from 10 to 500 euros."},
        "returns_followups": [
            "How do I return an item?",
            "Who pays for return shipping?",
            "When will I get my refund?",
        ],
        "followups_to_inactive": 0,
        "message_pairs": True,
        "review_pair": True,
        "alternates": alternates,
    }
