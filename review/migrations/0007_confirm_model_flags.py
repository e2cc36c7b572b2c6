from django.db import migrations, models


class Migration(migrations.Migration):
    """Model-only blocks go to the queue for confirmation (issue 9 §4): the policy's
    switch, and a queue entry's purpose with its priority in the working order."""

    dependencies = [("review", "0006_label_weight_help_and_male_breast_default")]

    operations = [
        migrations.AddField(
            model_name="policy",
            name="confirm_model_flags",
            field=models.BooleanField(
                default=True,
                help_text=(
                    "A block that rests only on a classifier's score (no bank match, no copy "
                    "of a rejected item) stays hidden and also goes to the queue, after the "
                    "review items, for a moderator to confirm; approving it restores the item "
                    "and tells the uploader. The confirmation rate per category (on the "
                    "categories below) is the first figure for tuning their flag-at scores."
                ),
                verbose_name="Confirm model-only blocks",
            ),
        ),
        migrations.AddField(
            model_name="queueentry",
            name="purpose",
            field=models.CharField(
                choices=[("review", "Review"), ("confirm", "Confirm a model's block")],
                default="review",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="queueentry",
            name="priority",
            field=models.PositiveSmallIntegerField(
                default=1, help_text="Worked first: review items 1, confirmations 0."
            ),
        ),
        migrations.AlterModelOptions(
            name="queueentry",
            options={
                "ordering": ["-priority", "-severity", "item_created_at", "pk"],
                "verbose_name": "queue entry",
                "verbose_name_plural": "queue",
            },
        ),
        migrations.RemoveIndex(model_name="queueentry", name="review_queu_claimed_980586_idx"),
        migrations.RemoveIndex(model_name="queueentry", name="review_queue_pending_order"),
        migrations.AddIndex(
            model_name="queueentry",
            index=models.Index(
                fields=["claimed_by", "-priority", "-severity", "item_created_at"],
                name="review_queue_held_order",
            ),
        ),
        migrations.AddIndex(
            model_name="queueentry",
            index=models.Index(
                condition=models.Q(("claimed_by__isnull", True)),
                fields=["-priority", "-severity", "item_created_at", "id"],
                name="review_queue_pending_order",
            ),
        ),
    ]
