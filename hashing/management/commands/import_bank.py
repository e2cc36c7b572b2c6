"""Import a (large) CSV hash list into a bank, all or nothing, with a progress line."""

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from hashing import services
from hashing.models import Bank


class Command(BaseCommand):
    help = (
        "Import hash_type,hash_value[,note[,content[,external_id]]] rows from a CSV file into "
        "a bank. "
        "A bad line stops the import and nothing is added."
    )

    def add_arguments(self, parser):
        parser.add_argument("bank", help="Bank name.")
        parser.add_argument("file", help="CSV file, or - for standard input.")
        parser.add_argument("--create", action="store_true", help="Create the bank if missing.")
        parser.add_argument("--kind", choices=Bank.Kind.values, default=Bank.Kind.BLOCK)
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--sample",
            action="append",
            default=[],
            metavar="IMAGE",
            help="A picture known to be in the list, to check its labels (repeatable).",
        )

    def handle(self, *args, bank, file, create, kind, batch_size, sample, **options):
        found = Bank.objects.filter(name=bank).first()
        if found is None and not create:
            raise CommandError(f"No bank named “{bank}” (add --create to create it).")
        if found is not None and found.kind != kind and create:
            raise CommandError(f"Bank “{bank}” exists and is a {found.kind} bank.")
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < 0.2 and done < total:
                return
            last[0] = now
            pct = 100 * done // total if total else 100
            self.stderr.write(f"\r{done:,}/{total:,} entries ({pct}%)", ending="")
            self.stderr.flush()

        try:
            samples = [(Path(name).name, Path(name).read_bytes()) for name in sample]
            with self._open(file) as lines, transaction.atomic():
                if found is None:
                    found = services.create_bank(bank, kind=kind)
                report = services.import_hash_list(
                    found,
                    lines,
                    source_name=file,
                    samples=samples,
                    progress=progress,
                    batch_size=batch_size,
                )
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        except services.BankError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write("")
        self.stdout.write(
            f"“{found.name}”: {report.summary()} ({time.monotonic() - started:.1f} s)"
        )

    @staticmethod
    def _open(file):
        if file == "-":
            return _Stdin()
        return open(file, encoding="utf-8-sig", newline="")


class _Stdin:
    def __enter__(self):
        return sys.stdin

    def __exit__(self, *exc):
        return False
