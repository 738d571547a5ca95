import csv
import json

import pytest
from django.core.management import CommandError, call_command

from chatbot.knowledge.models import AlternateQuestion, QAPair
from chatbot.knowledge.services import qa_import
from chatbot.knowledge.text import answer_html, answer_plain, detect_language

pytestmark = pytest.mark.django_db


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["question", "answer", "alternates", "language", "category"])
        writer.writeheader()
        writer.writerows(rows)


def test_it_imports_csv_with_one_alternate_per_line(tmp_path):
    # given
    path = tmp_path / "pairs.csv"
    write_csv(
        path,
        [
            {
                "question": "Do you sell gift wrap?",
                "answer": "Yes, at checkout.",
                "alternates": "gift wrapping available?\ncan you wrap my present",
                "language": "en",
                "category": "orders",
            }
        ],
    )
    # when
    call_command("import_qa", str(path))
    # then
    pair = QAPair.objects.get(question="Do you sell gift wrap?")
    assert pair.category == "orders"
    assert sorted(pair.alternates.values_list("text", flat=True)) == [
        "can you wrap my present",
        "gift wrapping available?",
    ]


def test_it_updates_a_pair_when_reimporting_the_same_question(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(
        json.dumps(
            [
                {
                    "question": "能开发票吗？",
                    "answer": "可以。",
                    "alternates": ["要发票", "开票"],
                    "language": "",
                    "category": "invoices",
                }
            ],
            ensure_ascii=False,
        )
    )
    call_command("import_qa", str(path))
    path.write_text(
        json.dumps(
            [
                {
                    "question": "能开发票吗？",
                    "answer": "可以，在订单页申请。",
                    "alternates": ["要发票"],
                    "language": "zh",
                    "category": "invoices",
                }
            ],
            ensure_ascii=False,
        )
    )
    call_command("import_qa", str(path))

    pair = QAPair.objects.get(question="能开发票吗？")
    assert pair.answer_texts() == {"zh": "可以，在订单页申请。"}
    assert list(pair.alternates.values_list("text", flat=True)) == ["要发票"]


def test_it_reports_bad_rows_and_saves_nothing():
    data = json.dumps(
        [
            {"question": "A good question?", "answer": "A good answer.", "alternates": [], "language": "en"},
            {"question": "", "answer": "No question.", "alternates": [], "language": "en"},
            {"question": "Klingon?", "answer": "Qapla'", "alternates": [], "language": "tlh"},
            {"question": "Wrong alternates?", "answer": "Yes.", "alternates": [1, 2], "language": "en"},
        ]
    )
    report = qa_import(data=data, file_format="json")

    assert not report.ok
    assert any(line.startswith("row 2:") and "question" in line for line in report.errors), report.errors
    assert any(line.startswith("row 3:") and "language" in line for line in report.errors), report.errors
    assert any(line.startswith("row 4:") and "alternates" in line for line in report.errors), report.errors
    assert not QAPair.objects.filter(question="A good question?").exists()


def test_it_refuses_a_file_that_is_not_json():
    report = qa_import(data="{not json", file_format="json")
    assert report.errors and report.errors[0].startswith("file:")


def test_the_import_command_fails_loudly_on_bad_rows(tmp_path):
    path = tmp_path / "bad.csv"
    write_csv(path, [{"question": "Q?", "answer": "", "alternates": "", "language": "en", "category": ""}])
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_qa", str(path))


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_export_then_import_round_trips(tmp_path, suffix):
    path = tmp_path / f"all.{suffix}"
    call_command("export_qa", str(path))
    before = {(p.question, tuple(sorted(p.answer_texts().items())), p.category) for p in QAPair.objects.all()}
    alternates_before = AlternateQuestion.objects.count()

    QAPair.objects.all().delete()
    call_command("import_qa", str(path))

    assert {(p.question, tuple(sorted(p.answer_texts().items())), p.category) for p in QAPair.objects.all()} == before
    assert AlternateQuestion.objects.count() == alternates_before
    if suffix == "json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(rows[0]["alternates"], list)
        assert list(rows[0]) == ["question", "answers", "alternates", "category", "handoff", "followups"]
        assert set(rows[0]["answers"]) == {"en", "zh"}


def test_the_demo_has_one_topic_per_answer_in_both_languages_and_enough_alternates():
    pairs = QAPair.objects.prefetch_related("alternates", "translations")
    assert pairs.count() == 64
    for pair in pairs:
        assert set(pair.answer_texts()) == {"en", "zh"}, pair.question
        questions = [pair.question, *(alternate.text for alternate in pair.alternates.all())]
        for language in ("en", "zh"):
            assert sum(detect_language(text) == language for text in questions) >= 5, (pair.question, language)
    assert QAPair.objects.filter(handoff=True).count() == 1


def test_load_demo_is_idempotent():
    count = QAPair.objects.count()
    call_command("load_demo", verbosity=0)
    assert QAPair.objects.count() == count


def test_answer_html_keeps_links_and_drops_scripts():
    html = answer_html(
        'See <a href="https://example.com/r" onclick="x()">returns</a><script>alert(1)</script> <b>now</b>'
    )
    assert '<a href="https://example.com/r" rel="noopener noreferrer nofollow">returns</a>' in html
    assert "script" not in html and "onclick" not in html and "<b>now</b>" in html
    assert answer_plain("Use <b>bold</b> & <a href='x'>link</a>") == "Use bold & link"


def test_it_detects_chinese_and_english():
    assert detect_language("我的订单在哪里") == "zh"
    assert detect_language("where is my order") == "en"


def test_the_admin_import_previews_rows_and_shows_row_errors(admin_client):
    # given
    good = [
        {
            "question": "Do you ship to Macau?",
            "answer": "Yes, in 3-5 days.",
            "alternates": ["macau delivery"],
            "language": "en",
            "category": "shipping",
        }
    ]
    bad = good + [{"question": "Broken row", "answer": "", "alternates": [], "language": "xx", "category": ""}]
    # when: a good file
    response = admin_client.post(
        "/admin/knowledge/qapair/import/",
        {"resource": "0", "format": "1", "import_file": _upload("good.json", good)},
    )
    # then: a preview with a confirm button, and nothing saved yet
    assert response.status_code == 200
    assert b"Do you ship to Macau?" in response.content and b"Confirm import" in response.content
    assert not QAPair.objects.filter(question="Do you ship to Macau?").exists()
    # when: a file with a bad row
    response = admin_client.post(
        "/admin/knowledge/qapair/import/",
        {"resource": "0", "format": "1", "import_file": _upload("bad.json", bad)},
    )
    # then: the row's errors, no confirm button
    assert response.status_code == 200
    assert b"Confirm import" not in response.content
    page = response.content.decode()
    assert (
        "Line number: 2" in page and "language must be one of en, zh (CHATBOT_LANGUAGES), not &#x27;xx&#x27;" in page
    ), page


def _upload(name, rows):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, json.dumps(rows).encode(), content_type="application/json")
