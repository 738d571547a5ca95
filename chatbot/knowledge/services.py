from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from import_export.results import Result

from chatbot.knowledge.merging import pairs_merge_rows
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.resources import QAPairResource, answer_columns_check, format_for
from chatbot.knowledge.selectors import pairs_changed
from chatbot.registry.models import TrainingRun
from chatbot.registry.services import training_run_create


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _report(result: Result) -> ImportReport:
    report = ImportReport(
        created=result.totals.get("new", 0),
        updated=result.totals.get("update", 0) + result.totals.get("skip", 0),
    )
    for error in result.base_errors:
        report.errors.append(f"file: {error.error}")
    for row_number, errors in result.row_errors():
        for error in errors:
            report.errors.append(f"row {row_number}: {error.error}")
    for invalid in result.invalid_rows:
        for name, messages in invalid.field_specific_errors.items():
            report.errors.append(f"row {invalid.number}: {name}: {' '.join(messages)}")
        for message in invalid.non_field_specific_errors:
            report.errors.append(f"row {invalid.number}: {message}")
    return report


def qa_import(*, data: str | bytes, file_format: str, user: Any = None, dry_run: bool = False) -> ImportReport:
    """Create or update pairs (matched on `question`); nothing is saved when any row is bad."""
    fmt = format_for(f"x.{file_format}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            return ImportReport(errors=[f"file: not UTF-8 text (byte {error.start}); save it as UTF-8"])
    try:
        dataset = fmt.create_dataset(data)
    except Exception as error:  # tablib and json raise many types for a malformed file
        return ImportReport(errors=[f"file: cannot read {file_format.upper()}: {str(error)[:300]}"])
    problem = answer_columns_check(list(dataset.headers or []))
    if problem:
        return ImportReport(errors=[f"file: {problem}"])
    if not len(dataset):
        return ImportReport(errors=["file: no rows to import"])
    resource = QAPairResource(user=user)
    result = resource.import_data(dataset, dry_run=True, rollback_on_validation_errors=True)
    report = _report(result)
    if dry_run or not report.ok:
        return report
    return _report(resource.import_data(dataset, dry_run=False, rollback_on_validation_errors=True))


def qa_import_file(*, path: str | Path, user: Any = None, dry_run: bool = False) -> ImportReport:
    path = Path(path)
    return qa_import(data=path.read_bytes(), file_format=path.suffix.lstrip("."), user=user, dry_run=dry_run)


def qa_export_file(*, path: str | Path, queryset: Any = None) -> int:
    path = Path(path)
    fmt = format_for(str(path))
    queryset = queryset if queryset is not None else QAPair.objects.all()
    dataset = QAPairResource().export(
        queryset=queryset.prefetch_related("translations", "alternates", "followup_links__followup")
    )
    path.write_text(fmt.export_data(dataset), encoding="utf-8")
    return len(dataset)


@transaction.atomic
def pairs_merge(*, survivor: QAPair, merged: list[QAPair], user: Any = None) -> list[int]:
    """Merge pairs into `survivor` as one topic (see merging.pairs_merge_rows); returns the ids merged.

    The model in service still predicts the merged ids: they stay as inactive redirects, answered with the
    survivor's answers, and a training run is queued so that the next model learns the topic as one label."""
    ids = pairs_merge_rows(apps.get_model, survivor_id=survivor.pk, merged_ids=[pair.pk for pair in merged])
    if ids:
        QAPair.objects.filter(pk=survivor.pk).update(is_active=True, updated_by=user, updated_at=timezone.now())
        pairs_changed()  # queryset updates send no signal
        training_run_create(trigger=TrainingRun.Trigger.ADMIN, user=user)
    return ids
