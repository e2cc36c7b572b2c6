"""Write a bank as a CSV hash list (the format import_bank reads)."""

from django.core.management.base import BaseCommand, CommandError

from hashing import services
from hashing.models import Bank


class Command(BaseCommand):
    help = "Export a bank's entries as hash_type,hash_value,note,content,external_id rows."

    def add_arguments(self, parser):
        parser.add_argument("bank", help="Bank name.")
        parser.add_argument("file", nargs="?", default="-", help="Output file (default stdout).")
        parser.add_argument(
            "--include-disabled", action="store_true", help="Also write disabled entries."
        )

    def handle(self, *args, bank, file, include_disabled, **options):
        found = Bank.objects.filter(name=bank).first()
        if found is None:
            raise CommandError(f"No bank named “{bank}”.")
        if file == "-":
            count = services.export_hash_list(found, self.stdout, include_disabled=include_disabled)
        else:
            with open(file, "w", encoding="utf-8", newline="") as out:
                count = services.export_hash_list(found, out, include_disabled=include_disabled)
        self.stderr.write(f"Exported {count:,} entries of “{found.name}”.")
