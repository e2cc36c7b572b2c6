# Issue 9 §3: say what a label weight does, and let a shirtless man reach review.

import django.core.validators
from django.db import migrations, models

# NudeNet's MALE_BREAST_EXPOSED → suggestive: the old default weight and the new one
# (review/classifiers/nudenet.py says why). Frozen here: later edits of the provider's
# defaults must not change what this migration did.
PROVIDER, LABEL, CATEGORY = "nudenet", "male_breast_exposed", "suggestive"
OLD, NEW = 0.5, 0.6


def _rows(apps, at):
    """Rows of the label still at weight `at`; rows an admin set to anything else stay."""
    ClassifierLabel = apps.get_model("review", "ClassifierLabel")
    return ClassifierLabel.objects.filter(
        provider=PROVIDER, label__iexact=LABEL, category__name=CATEGORY, weight=at
    )


def _move(apps, old, new):
    PolicyChange = apps.get_model("review", "PolicyChange")
    for row in _rows(apps, old):
        row.weight = new
        row.save(update_fields=["weight"])
        PolicyChange.objects.create(
            policy_id=row.policy_id,
            field=f"label {row.provider}:{row.label} weight"[:64],
            old_value=str(old),
            new_value=str(new),
            changed_by=None,  # the migration: a new default, not a person's edit
        )


def forwards(apps, schema_editor):
    _move(apps, OLD, NEW)


def backwards(apps, schema_editor):
    _move(apps, NEW, OLD)


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0005_drop_single_hash_duplicates'),
    ]

    operations = [
        migrations.AlterField(
            model_name='classifierlabel',
            name='weight',
            field=models.FloatField(default=1.0, help_text="0 to 1. A detection's score × this weight counts towards the category: 1 in full, 0.5 half (a detection at 90 % counts 45 %), 0 stops the label counting. The category's score is the highest of its weighted labels; its review-at and flag-at scores apply to that.", validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        migrations.RunPython(forwards, backwards),
    ]
