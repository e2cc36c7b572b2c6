"""Fingerprints become rows (item, algorithm, value, mirrored): a new algorithm needs no
migration. Existing fingerprints are copied over; 64-bit values were stored signed."""

import django.db.models.deletion
from django.db import migrations, models

HASH64 = ("ahash", "dhash", "phash", "mhash")


def copy_fingerprints(apps, schema_editor):
    Old = apps.get_model("hashing", "LegacyFingerprint")
    New = apps.get_model("hashing", "Fingerprint")
    batch = []
    for old in Old.objects.all().iterator(chunk_size=2000):
        for name in HASH64:
            value = getattr(old, name) & ((1 << 64) - 1)
            batch.append(
                New(item_id=old.item_id, algorithm=name, value=format(value, "016x"),
                    created_at=old.created_at)
            )
        batch.append(
            New(item_id=old.item_id, algorithm="pdq", value=old.pdq, quality=old.pdq_quality,
                created_at=old.created_at)
        )
        if len(batch) >= 5000:
            New.objects.bulk_create(batch)
            batch = []
    New.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ("hashing", "0002_banks"),
        ("uploads", "0001_initial"),
    ]

    operations = [
        migrations.RenameModel("Fingerprint", "LegacyFingerprint"),
        migrations.CreateModel(
            name="Fingerprint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("algorithm", models.CharField(max_length=16)),
                ("value", models.CharField(max_length=64)),
                ("mirrored", models.BooleanField(default=False)),
                ("quality", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("item", models.ForeignKey(db_index=False,
                                           on_delete=django.db.models.deletion.CASCADE,
                                           related_name="fingerprints", to="uploads.mediaitem")),
            ],
            options={
                "indexes": [
                    models.Index(fields=["algorithm", "mirrored", "created_at"],
                                 name="fp_algo_recent"),
                    models.Index(fields=["algorithm", "value"], name="fp_algo_value"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("item", "algorithm", "mirrored"),
                                            name="one_hash_per_item_algorithm"),
                ],
            },
        ),
        migrations.RunPython(copy_fingerprints, migrations.RunPython.noop),
        migrations.DeleteModel("LegacyFingerprint"),
        migrations.AlterField(
            model_name="bankentry",
            name="algorithm",
            field=models.CharField(max_length=16),
        ),
    ]
