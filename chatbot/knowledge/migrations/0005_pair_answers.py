# A pair becomes a topic: its answers move to one row per language (PairAnswer); merged pairs redirect.

import django.db.models.deletion
from django.db import migrations, models


def answers_to_rows(apps, schema_editor):
    QAPair = apps.get_model("knowledge", "QAPair")
    PairAnswer = apps.get_model("knowledge", "PairAnswer")
    PairAnswer.objects.bulk_create(
        PairAnswer(pair_id=pk, language=language or "en", text=answer)
        for pk, answer, language in QAPair.objects.values_list("pk", "answer", "language").iterator()
        if answer
    )


def rows_to_answers(apps, schema_editor):
    """Back to one answer per pair: the answer in the pair's language, else its first."""
    QAPair = apps.get_model("knowledge", "QAPair")
    PairAnswer = apps.get_model("knowledge", "PairAnswer")
    for pair in QAPair.objects.all():
        rows = {row.language: row.text for row in PairAnswer.objects.filter(pair_id=pair.pk).order_by("id")}
        if rows:
            language = pair.language if pair.language in rows else next(iter(rows))
            QAPair.objects.filter(pk=pair.pk).update(answer=rows[language], language=language)


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0004_followups'),
    ]

    operations = [
        migrations.AddField(
            model_name='qapair',
            name='merged_into',
            field=models.ForeignKey(blank=True, help_text='Merged into this pair: inactive, and the bot answers with that pair instead.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='merged_from', to='knowledge.qapair'),
        ),
        migrations.CreateModel(
            name='PairAnswer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('language', models.CharField(choices=[('en', 'English'), ('zh', 'Chinese')], max_length=8)),
                ('text', models.TextField(help_text='Plain text; links (<a href>) and <b>, <i>, lists are kept, other HTML is removed.', verbose_name='answer')),
                ('pair', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='translations', to='knowledge.qapair')),
            ],
            options={
                'verbose_name': 'answer',
                'ordering': ['id'],
                'constraints': [models.UniqueConstraint(fields=('pair', 'language'), name='unique_answer_per_language')],
            },
        ),
        migrations.RunPython(answers_to_rows, rows_to_answers),
    ]
