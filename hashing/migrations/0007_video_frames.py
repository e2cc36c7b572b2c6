import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hashing", "0006_external_id_and_journal"),
        ("uploads", "0002_item_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="bankentry",
            name="frame",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RemoveConstraint(model_name="bankentry", name="one_hash_per_algorithm"),
        migrations.AddConstraint(
            model_name="bankentry",
            constraint=models.UniqueConstraint(
                fields=("content", "algorithm", "frame"), name="one_hash_per_algorithm_frame"
            ),
        ),
        migrations.CreateModel(
            name="VideoFrames",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("hashes", models.BinaryField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "item",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="video_frames",
                        to="uploads.mediaitem",
                    ),
                ),
            ],
        ),
    ]
