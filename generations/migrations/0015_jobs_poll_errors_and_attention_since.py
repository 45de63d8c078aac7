"""Conversions, finishing steps and concept jobs count their failed polls in a row (a
person is asked after tasks.MAX_POLL_ERRORS, as for a generation), and keep when they
last stopped for a person and when a person resolved that (the attention page)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0014_finishing_steps"),
    ]

    operations = [
        migrations.AddField(
            model_name="conceptjob",
            name="attention_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conceptjob",
            name="poll_errors",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="conceptjob",
            name="resolved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conversion",
            name="attention_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conversion",
            name="poll_errors",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="conversion",
            name="resolved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
