"""Import and export of Q&A pairs (CSV and JSON), shared by the admin and the commands."""

import json
from typing import Any

import tablib
from import_export import fields, resources, widgets
from import_export.formats import base_formats

from chatbot.knowledge.models import AlternateQuestion, QAPair
from chatbot.knowledge.text import detect_language

MAX_ALTERNATES = 200


class AlternatesWidget(widgets.Widget):
    """One alternate question per line in CSV; a list of strings in JSON."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> list[str]:
        if value in (None, ""):
            return []
        if isinstance(value, str):
            items = value.splitlines()
        elif isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise ValueError("alternates must be a list of strings")
            items = value
        else:
            raise ValueError("alternates must be text (one per line) or a list of strings")
        cleaned = list(dict.fromkeys(item.strip() for item in items if item.strip()))
        if len(cleaned) > MAX_ALTERNATES:
            raise ValueError(f"at most {MAX_ALTERNATES} alternate questions per pair")
        too_long = [item for item in cleaned if len(item) > 500]
        if too_long:
            raise ValueError(f"alternate question longer than 500 characters: {too_long[0][:40]}...")
        return cleaned

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "\n".join(value or [])


class QAPairResource(resources.ModelResource):
    alternates = fields.Field(column_name="alternates", attribute="_alternates", widget=AlternatesWidget())
    handoff = fields.Field(column_name="handoff", attribute="handoff", widget=widgets.BooleanWidget())

    class Meta:
        model = QAPair
        fields = ("question", "answer", "alternates", "language", "category", "handoff")
        export_order = fields
        import_id_fields = ("question",)
        clean_model_instances = True
        skip_unchanged = False
        use_transactions = True

    def __init__(self, user: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = user

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        for key in ("question", "answer", "category", "language"):
            if isinstance(row.get(key), str):
                row[key] = row[key].strip()
        if not row.get("language") and isinstance(row.get("question"), str):
            row["language"] = detect_language(row["question"])
        if row.get("handoff") in (None, ""):
            row["handoff"] = False
        if row.get("category") is None:
            row["category"] = ""

    def dehydrate_alternates(self, pair: QAPair) -> str:
        return "\n".join(alt.text for alt in pair.alternates.all())

    def before_save_instance(self, instance: QAPair, row: Any, **kwargs: Any) -> None:
        if self.user is not None and getattr(self.user, "pk", None):
            instance.updated_by = self.user

    def after_save_instance(self, instance: QAPair, row: Any, **kwargs: Any) -> None:
        if kwargs.get("dry_run"):
            return
        wanted = [text for text in getattr(instance, "_alternates", None) or [] if text != instance.question]
        curated = instance.alternates.filter(source=AlternateQuestion.Source.CURATED)
        curated.exclude(text__in=wanted).delete()
        existing = set(instance.alternates.values_list("text", flat=True))
        AlternateQuestion.objects.bulk_create(
            [AlternateQuestion(pair=instance, text=text) for text in wanted if text not in existing]
        )

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return QAPair.objects.prefetch_related("alternates")


class JSON(base_formats.JSON):
    """JSON with `alternates` as a list of strings (the CSV cell has one per line)."""

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> str:
        rows = []
        for row in dataset.dict:
            row = dict(row)
            row["alternates"] = [line for line in (row.get("alternates") or "").splitlines() if line]
            rows.append(row)
        return json.dumps(rows, ensure_ascii=False, indent=2)

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        data = json.loads(in_stream)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ValueError("JSON must be a list of objects with keys question, answer, alternates, language, category")
        headers = list(dict.fromkeys(key for item in data for key in item))
        dataset = tablib.Dataset(headers=headers)
        for item in data:
            dataset.append([item.get(key, "") for key in headers])
        return dataset


class CSV(base_formats.CSV):
    pass


FORMATS = {"csv": CSV, "json": JSON}


def format_for(path: str) -> base_formats.TablibFormat:
    suffix = path.rsplit(".", 1)[-1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"unknown file type .{suffix}: use .csv or .json")
    return FORMATS[suffix]()
