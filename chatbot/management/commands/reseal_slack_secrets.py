"""After adding a new first key to SLACK_ENCRYPTION_KEY: seal every stored secret with it,
so that the old key can then be removed."""

from django.core.management.base import BaseCommand
from django.db import transaction

from chatbot.models import Workspace
from chatbot.sealing import reseal


class Command(BaseCommand):
    help = "Seal every workspace's tokens and secrets again with the first SLACK_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        fields = [f"{name}_sealed" for name in Workspace.SECRETS]
        count = 0
        with transaction.atomic():
            for workspace in Workspace.objects.select_for_update():
                for field in fields:
                    setattr(workspace, field, reseal(getattr(workspace, field)))
                workspace.save(update_fields=fields)
                count += 1
        self.stdout.write(f"Resealed the secrets of {count} workspace(s).")
