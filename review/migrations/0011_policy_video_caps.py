import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("review", "0010_queue_claim_source_and_release")]

    operations = [
        migrations.AddField(
            model_name="policy",
            name="video_max_mb",
            field=models.PositiveIntegerField(
                default=200,
                help_text="Larger videos are refused at intake (at most the server's VIDEO_MAX_BYTES).",
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="Video size cap (MB)",
            ),
        ),
        migrations.AddField(
            model_name="policy",
            name="video_max_seconds",
            field=models.PositiveIntegerField(
                default=600,
                help_text="Longer videos are refused at intake, from the container header.",
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="Video length cap (seconds)",
            ),
        ),
        migrations.AddField(
            model_name="policy",
            name="video_sample_fps",
            field=models.FloatField(
                default=1.0,
                help_text=(
                    "Frames classified (and hashed for matching) per second of video; 1 catches a "
                    "picture shown for a second. At most 600 frames are sampled per video."
                ),
                validators=[django.core.validators.MinValueValidator(0.05)],
                verbose_name="Video frames sampled per second",
            ),
        ),
    ]
