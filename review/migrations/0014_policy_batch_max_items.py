import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    """The API's batch size cap moves from a setting (API_BATCH_MAX_ITEMS) into the policy,
    so that a client's own policy sets its own; 50 as before."""

    dependencies = [("review", "0013_text_terms")]

    operations = [
        migrations.AddField(
            model_name="policy",
            name="batch_max_items",
            field=models.PositiveSmallIntegerField(
                default=50,
                help_text="Items a client may send in one analyses batch; a larger batch is a 400.",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(1000),
                ],
                verbose_name="API batch size cap",
            ),
        ),
    ]
