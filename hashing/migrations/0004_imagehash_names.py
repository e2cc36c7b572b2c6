"""Algorithm names become imagehash's: the row-DCT hash this product called "phash" is
imagehash.phash_simple, and its "mhash" is imagehash.phash (issue 9: a list written with
imagehash.phash and labelled phash never matched). Renamed in that order, so no row ever
has two names; each value (and each threshold, in review's voters) stays with its hash.

Fingerprints are renamed only for items that have an "mhash" row (the former names): an
item hashed by the new code before this migration ran already has the new names. Bank
entries had no such mix (the former code refused the name phash_simple).
"""

from django.db import migrations


def _rename(apps, first: tuple[str, str], then: tuple[str, str]):
    Fingerprint = apps.get_model("hashing", "Fingerprint")
    BankEntry = apps.get_model("hashing", "BankEntry")
    # Items still under the old names are those with a row of the name `then` renames.
    old_items = Fingerprint.objects.filter(algorithm=then[0]).values("item_id")
    Fingerprint.objects.filter(algorithm=first[0], item_id__in=old_items).update(algorithm=first[1])
    Fingerprint.objects.filter(algorithm=then[0]).update(algorithm=then[1])
    BankEntry.objects.filter(algorithm=first[0]).update(algorithm=first[1])
    BankEntry.objects.filter(algorithm=then[0]).update(algorithm=then[1])


def forward(apps, schema_editor):
    _rename(apps, ("phash", "phash_simple"), ("mhash", "phash"))


def backward(apps, schema_editor):
    _rename(apps, ("phash", "mhash"), ("phash_simple", "phash"))


class Migration(migrations.Migration):
    dependencies = [("hashing", "0003_fingerprint_rows")]

    operations = [migrations.RunPython(forward, backward)]
