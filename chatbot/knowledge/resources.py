"""Import and export of Q&A pairs (CSV and JSON), shared by the admin and the commands.

One row per pair: `question`, an answer column per language of CHATBOT_LANGUAGES (`answer_en`, `answer_zh`; in
JSON an `answers` object), `alternates` in any language, `category`, `handoff`, `followups`. The one-language
format of before (`answer` with `language`, or the language of the question) still imports: it sets that
language's answer and leaves the pair's others."""

import json
from typing import Any

import tablib
from import_export import fields, resources, widgets
from import_export.formats import base_formats

from chatbot.knowledge.models import AlternateQuestion, FollowUp, PairAnswer, QAPair, languages
from chatbot.knowledge.text import detect_language

MAX_ALTERNATES = 200
MAX_FOLLOWUPS = 20
LIST_COLUMNS = ("alternates", "followups")
ANSWER_PREFIX = "answer_"
TEXT_COLUMNS = ("question", "answer", "language", "category")
TRUE_VALUES = {"1", "true", "yes", "y", "on"}
FALSE_VALUES = {"0", "false", "no", "n", "off", ""}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LinesWidget(widgets.Widget):
    """Questions, one per line in CSV; a list of strings in JSON (alternates, follow-ups)."""

    def __init__(self, column: str, limit: int) -> None:
        super().__init__()
        self.column, self.limit = column, limit

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> list[str]:
        if value in (None, ""):
            return []
        if isinstance(value, str):
            items = value.splitlines()
        elif isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise ValueError(f"{self.column} must be a list of strings")
            # a line break separates questions in CSV and in the export: the same rule for a JSON list
            items = [line for item in value for line in item.splitlines()]
        else:
            raise ValueError(f"{self.column} must be text (one per line) or a list of strings")
        cleaned = list(dict.fromkeys(item.strip() for item in items if item.strip()))
        if len(cleaned) > self.limit:
            raise ValueError(f"at most {self.limit} {self.column} per pair")
        too_long = [item for item in cleaned if len(item) > 500]
        if too_long:
            raise ValueError(f"{self.column}: question longer than 500 characters: {too_long[0][:40]}...")
        if any("\x00" in item for item in cleaned):
            raise ValueError(f"{self.column} must not contain NUL characters")
        return cleaned

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "\n".join(value or [])


class StrictBooleanWidget(widgets.BooleanWidget):
    """true/false, 1/0, yes/no (empty: false); anything else is an error, not a silent false."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool:
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_VALUES | FALSE_VALUES:
            return value.strip().lower() in TRUE_VALUES
        raise ValueError(f"handoff must be true or false, not {_short(repr(value), 40)}")


def answer_columns() -> list[str]:
    return [ANSWER_PREFIX + code for code in languages()]


def answer_columns_check(headers: list[str]) -> str:
    """What is wrong with a file's columns ("" when nothing): a question, and an answer in some language."""
    unknown = [h for h in headers if h.startswith(ANSWER_PREFIX) and h not in answer_columns()]
    if unknown:
        return (
            f"unknown column(s) {', '.join(unknown)}: answers are in {', '.join(answer_columns())} (CHATBOT_LANGUAGES)"
        )
    missing = [] if "question" in headers else ["question"]
    if "answer" not in headers and not set(answer_columns()) & set(headers):
        missing.append(" or ".join(answer_columns() + ["answer"]))
    return f"missing column(s): {', '.join(missing)}" if missing else ""


class QAPairResource(resources.ModelResource):
    alternates = fields.Field(
        column_name="alternates", attribute="_alternates", widget=LinesWidget("alternates", MAX_ALTERNATES)
    )
    followups = fields.Field(
        column_name="followups", attribute="_followups", widget=LinesWidget("followups", MAX_FOLLOWUPS)
    )
    handoff = fields.Field(column_name="handoff", attribute="handoff", widget=StrictBooleanWidget())

    class Meta:
        model = QAPair
        fields = ("question", "alternates", "category", "handoff", "followups")
        import_id_fields = ("question",)
        clean_model_instances = True
        skip_unchanged = False
        use_transactions = True

    def __init__(self, user: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for column in answer_columns():
            code = column.removeprefix(ANSWER_PREFIX)
            self.fields[column] = fields.Field(
                column_name=column,
                attribute=f"_{column}",
                dehydrate_method=lambda pair, code=code: pair.answer_texts().get(code, ""),
            )
        self.user = user
        self.known_questions: set[str] = set()
        self.followups_wanted: dict[int, list[str]] = {}

    def before_import(self, dataset: tablib.Dataset, **kwargs: Any) -> None:
        """Checks of the whole file, for the admin and the commands alike: columns, and no question twice
        (a second row would silently overwrite the first)."""
        self.known_questions, self.followups_wanted = set(), {}  # the same resource may import twice
        headers = dataset.headers or []
        problem = answer_columns_check(headers)
        if problem:
            dataset.wipe()  # import-export goes on to the rows after this error, and rows without headers crash it
            raise ValueError(problem)
        seen: dict[str, int] = {}
        for number, question in enumerate(dataset["question"], start=1):
            if not isinstance(question, str) or not question.strip():
                continue  # reported on its row
            first = seen.setdefault(question.strip(), number)
            if first != number:
                raise ValueError(f"row {number}: the question “{_short(question.strip())}” is also on row {first}")
        if "followups" in headers:  # a follow-up may name a pair stored already or one a later row creates
            self.known_questions = set(seen) | set(QAPair.objects.values_list("question", flat=True))

    def get_export_order(self) -> tuple[str, ...]:
        return ("question", *answer_columns(), "alternates", "category", "handoff", "followups")

    def get_import_order(self) -> tuple[str, ...]:
        return self.get_export_order()

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        for key in (*TEXT_COLUMNS, *answer_columns()):
            value = row.get(key)
            if value is None:
                continue
            if not isinstance(value, str):  # JSON: a number, list or object
                raise ValueError(f"{key} must be text, not {type(value).__name__}")
            if "\x00" in value:
                raise ValueError(f"{key} must not contain NUL characters")
            row[key] = value.strip()
        if "answer" in row:
            self._one_language(row)
        if not any(row.get(column) for column in answer_columns()):
            raise ValueError("a pair needs an answer in at least one language")
        if row.get("handoff") in (None, ""):
            row["handoff"] = False
        if row.get("category") is None:
            row["category"] = ""
        if "followups" in row:
            self._check_followups(row)

    def _one_language(self, row: Any) -> None:
        """The format of before: `answer` in `language` (or the question's) becomes that language's column."""
        language = row.get("language") or (
            detect_language(row["question"]) if isinstance(row.get("question"), str) else languages()[0]
        )
        if language not in languages():
            raise ValueError(f"language must be one of {', '.join(languages())} (CHATBOT_LANGUAGES), not {language!r}")
        column = ANSWER_PREFIX + language
        if row.get("answer") and not row.get(column):
            row[column] = row["answer"]

    def _check_followups(self, row: Any) -> None:
        wanted = self.fields["followups"].widget.clean(row.get("followups"))
        if row.get("question") in wanted:
            raise ValueError("followups: a pair cannot be its own follow-up")
        unknown = [question for question in wanted if question not in self.known_questions]
        if unknown:
            raise ValueError(f"followups: no pair has the question “{_short(unknown[0])}”")

    def dehydrate_alternates(self, pair: QAPair) -> str:
        return "\n".join(alt.text for alt in pair.alternates.all())

    def dehydrate_followups(self, pair: QAPair) -> str:
        return "\n".join(link.followup.question for link in pair.followup_links.all())

    def before_save_instance(self, instance: QAPair, row: Any, **kwargs: Any) -> None:
        if self.user is not None and getattr(self.user, "pk", None):
            instance.updated_by = self.user

    def after_save_instance(self, instance: QAPair, row: Any, **kwargs: Any) -> None:
        if getattr(instance, "_followups", None) is not None:
            self.followups_wanted[instance.pk] = instance._followups  # type: ignore[attr-defined]
        if not kwargs.get("dry_run"):
            self._answers_save(instance, row)
        alternates = getattr(instance, "_alternates", None)
        if kwargs.get("dry_run") or alternates is None:  # no alternates column: the pair keeps its alternates
            return
        wanted = [text for text in alternates if text != instance.question]
        curated = instance.alternates.filter(source=AlternateQuestion.Source.CURATED)
        curated.exclude(text__in=wanted).delete()
        existing = set(instance.alternates.values_list("text", flat=True))
        AlternateQuestion.objects.bulk_create(
            [AlternateQuestion(pair=instance, text=text) for text in wanted if text not in existing]
        )

    def _answers_save(self, pair: QAPair, row: Any) -> None:
        """Each answer column of the file sets that language's answer; an empty cell removes it."""
        for column in answer_columns():
            if column not in row:
                continue
            language = column.removeprefix(ANSWER_PREFIX)
            if row[column]:
                PairAnswer.objects.update_or_create(pair=pair, language=language, defaults={"text": row[column]})
            else:
                PairAnswer.objects.filter(pair=pair, language=language).delete()

    def after_import(self, dataset: tablib.Dataset, result: Any, **kwargs: Any) -> None:
        """Follow-ups are linked once every row is saved: a row may name a pair that a later row creates."""
        if not self.followups_wanted or result.has_errors() or result.has_validation_errors():
            return
        questions = {question for wanted in self.followups_wanted.values() for question in wanted}
        ids = dict(QAPair.objects.filter(question__in=questions).values_list("question", "pk"))
        FollowUp.objects.filter(pair_id__in=self.followups_wanted).delete()
        FollowUp.objects.bulk_create(
            FollowUp(pair_id=pair_id, followup_id=ids[question], order=order)
            for pair_id, wanted in self.followups_wanted.items()
            for order, question in enumerate(wanted)
        )

    def filter_export(self, queryset: Any, **kwargs: Any) -> Any:
        """Pairs merged into another are left out: their questions are the survivor's alternates, and a file
        imported elsewhere would make them pairs of their own again."""
        queryset = super().filter_export(queryset, **kwargs)
        return queryset.filter(merged_into__isnull=True) if hasattr(queryset, "filter") else queryset

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return QAPair.objects.prefetch_related("translations", "alternates", "followup_links__followup")


class JSON(base_formats.JSON):
    """JSON with `alternates` and `followups` as lists of strings (the CSV cell has one per line) and the answers
    as an object {language: answer} (the CSV's answer_<language> columns)."""

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> str:
        rows = []
        for row in dataset.dict:
            row = dict(row)
            answers = {
                key.removeprefix(ANSWER_PREFIX): row.pop(key) for key in list(row) if key.startswith(ANSWER_PREFIX)
            }
            for column in LIST_COLUMNS:
                row[column] = [line for line in (row.get(column) or "").splitlines() if line]
            rows.append(
                {"question": row.pop("question", ""), "answers": {k: v for k, v in answers.items() if v}, **row}
            )
        return json.dumps(rows, ensure_ascii=False, indent=2)

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        data = json.loads(in_stream)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ValueError(
                "JSON must be a list of objects with keys question, answers, alternates, category, handoff, followups"
            )
        data = [_answers_flat(item) for item in data]
        headers = list(dict.fromkeys(key for item in data for key in item))
        if data and not headers:  # `[{}]`: tablib would make a dataset without headers, which import_data trips on
            raise ValueError("JSON objects need at least the keys question and answers")
        dataset = tablib.Dataset(headers=headers)
        for item in data:
            dataset.append([item.get(key, "") for key in headers])
        return dataset


def _answers_flat(item: dict) -> dict:
    """{"answers": {"en": ...}} as the CSV's columns {"answer_en": ...}."""
    if "answers" not in item:
        return item
    answers = item["answers"]
    if not isinstance(answers, dict) or not all(isinstance(v, str) for v in answers.values()):
        raise ValueError('"answers" must be an object of texts by language, e.g. {"en": "...", "zh": "..."}')
    flat = {key: value for key, value in item.items() if key != "answers"}
    flat.update({ANSWER_PREFIX + str(code): text for code, text in answers.items()})
    return flat


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): customer text reaches
# exported pairs through the review queue.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_escape(value: Any) -> Any:
    """A leading ' makes a spreadsheet show the cell as text. A cell that already starts with ' before one of
    those characters gets one more, so that formula_unescape gives back exactly what was exported."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def formula_unescape(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("'") and value.lstrip("'").startswith(FORMULA_STARTS):
        return value[1:]
    return value


class CSV(base_formats.CSV):
    """CSV with formula cells escaped on export and unescaped on import, so a round trip is lossless.

    import-export's own IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only knows "=" and deletes it (the text
    changes, and an import does not bring it back), and it would apply to the JSON format too."""

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> str:
        escaped = tablib.Dataset(headers=dataset.headers)
        for row in dataset:
            escaped.append([formula_escape(cell) for cell in row])
        return super().export_data(escaped, **kwargs)

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        dataset = super().create_dataset(in_stream, **kwargs)
        unescaped = tablib.Dataset(headers=dataset.headers)
        for row in dataset:
            unescaped.append([formula_unescape(cell) for cell in row])
        return unescaped


FORMATS = {"csv": CSV, "json": JSON}


def format_for(path: str) -> base_formats.TablibFormat:
    suffix = path.rsplit(".", 1)[-1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"unknown file type .{suffix}: use .csv or .json")
    return FORMATS[suffix]()
