"""Make an API client and print one key for it (shown once), e.g. for a local trial:

.venv/bin/python manage.py create_api_client partner --scopes analyse lookup
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api import services
from api.models import SCOPES, ApiClient


class Command(BaseCommand):
    help = "Create an API client (or add a key to an existing one) and print the key once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes", nargs="+", choices=SCOPES, default=list(SCOPES), help="default: all"
        )
        parser.add_argument("--callback-url", default="")
        parser.add_argument("--rate", default="600/minute", help="e.g. 600/minute")

    def handle(self, *args, name, scopes, callback_url, rate, **options):
        client = ApiClient.objects.filter(name=name).first()
        if client is None:
            try:
                client = services.create_client(
                    name, scopes=scopes, callback_url=callback_url, throttle_rate=rate
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            self.stdout.write(f"Created client {name!r} with scopes {', '.join(scopes)}.")
        else:
            self.stdout.write(f"Client {name!r} exists; issuing another key.")
        _, raw = services.issue_key(client, name="manage.py create_api_client")
        self.stdout.write(f"Key (shown once, not stored): {raw}")
        self.stdout.write(f"Use it as:  Authorization: Api-Key {raw}")
