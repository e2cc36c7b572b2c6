"""Voter rows take imagehash's names (hashing 0004 says why): "phash" (the row DCT,
threshold 8 by default) becomes "phash_simple", then "mhash" (the median DCT, 12) becomes
"phash". Each row keeps its threshold, weight and switch, so the thresholds stay with the
hash they were measured for.

Only policies with an "mhash" row still have the former names. A "phash_simple" row the
new code may have seeded in such a policy before this ran (a default, never edited) makes
way for the renamed row that carries the admin's settings.
"""

from django.db import migrations


def _rename(apps, first: tuple[str, str], then: tuple[str, str]):
    Voter = apps.get_model("review", "Voter")
    old_policies = Voter.objects.filter(algorithm=then[0]).values("policy_id")
    Voter.objects.filter(policy_id__in=old_policies, algorithm=first[1]).delete()
    Voter.objects.filter(policy_id__in=old_policies, algorithm=first[0]).update(algorithm=first[1])
    Voter.objects.filter(algorithm=then[0]).update(algorithm=then[1])


def forward(apps, schema_editor):
    _rename(apps, ("phash", "phash_simple"), ("mhash", "phash"))


def backward(apps, schema_editor):
    _rename(apps, ("phash", "mhash"), ("phash_simple", "phash"))


class Migration(migrations.Migration):
    dependencies = [("review", "0007_confirm_model_flags")]

    operations = [migrations.RunPython(forward, backward)]
