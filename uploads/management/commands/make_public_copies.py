from django.core.management.base import BaseCommand

from uploads.models import MediaItem
from uploads.services import make_public_copy


class Command(BaseCommand):
    help = (
        "Make the public copy of every item that has none (items analysed before copies were "
        "made with the analysis, or whose copy could not be made), in this process, so that "
        "no web request waits for one. Items analysed from now on get theirs in the worker."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--visible-only",
            action="store_true",
            help="only passed and approved items (the ones people other than staff see)",
        )

    def handle(self, *args, visible_only, **options):
        items = MediaItem.objects.exclude(status=MediaItem.Status.PROCESSING)
        if visible_only:
            items = items.filter(status__in=MediaItem.VISIBLE)
        made = failed = 0
        for item in items.iterator():
            if make_public_copy(item) is None:
                failed += 1
            else:
                made += 1
        self.stdout.write(f"{made} item(s) have a public copy; {failed} could not be made.")
