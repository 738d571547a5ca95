# The answer and language of a pair now live in PairAnswer (0005).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0006_merge_demo_twins'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='qapair',
            name='answer',
        ),
        migrations.RemoveField(
            model_name='qapair',
            name='language',
        ),
    ]
