"""Voter weights and the quorum measured on the detection set (issue 9 §2): aHash, dHash,
pHash and PDQ weigh 2, phash_simple 1, and 4 is needed, so any two of the four strong
voters agreeing on a picture block it (hashing/algorithms.py gives the numbers).

A policy still at the former defaults (quorum 0, every voter weighing 1) moves to the new
ones, each change recorded without a user; a policy an admin tuned stays as it is.
"""

from django.db import migrations, models

# Frozen here: later edits of the algorithms' defaults must not change what this did.
WEIGHTS = {"ahash": 2, "dhash": 2, "phash": 2, "pdq": 2, "phash_simple": 1}
QUORUM = 4


def _untouched(policy, Voter) -> bool:
    weights = set(Voter.objects.filter(policy=policy).values_list("weight", flat=True))
    return policy.quorum == 0 and weights <= {1}


def forwards(apps, schema_editor):
    Policy = apps.get_model("review", "Policy")
    Voter = apps.get_model("review", "Voter")
    PolicyChange = apps.get_model("review", "PolicyChange")
    for policy in Policy.objects.all():
        if not _untouched(policy, Voter):
            continue
        changes = [PolicyChange(policy=policy, field="quorum", old_value="0", new_value="4")]
        for voter in Voter.objects.filter(policy=policy, algorithm__in=WEIGHTS):
            new = WEIGHTS[voter.algorithm]
            if new != voter.weight:
                changes.append(
                    PolicyChange(
                        policy=policy,
                        field=f"voter {voter.algorithm} weight",
                        old_value=str(voter.weight),
                        new_value=str(new),
                    )
                )
                voter.weight = new
                voter.save(update_fields=["weight"])
        policy.quorum = QUORUM
        policy.save(update_fields=["quorum"])
        PolicyChange.objects.bulk_create(changes)


def backwards(apps, schema_editor):
    Policy = apps.get_model("review", "Policy")
    Voter = apps.get_model("review", "Voter")
    for policy in Policy.objects.filter(quorum=QUORUM):
        voters = dict(Voter.objects.filter(policy=policy).values_list("algorithm", "weight"))
        if all(voters.get(name, weight) == weight for name, weight in WEIGHTS.items()):
            Voter.objects.filter(policy=policy).update(weight=1)
            policy.quorum = 0
            policy.save(update_fields=["quorum"])


class Migration(migrations.Migration):
    dependencies = [("review", "0008_imagehash_voter_names")]

    operations = [
        migrations.AlterField(
            model_name="policy",
            name="quorum",
            field=models.PositiveSmallIntegerField(
                default=4,
                help_text=(
                    "Vote weight needed to block (capped at what the voters able to vote can "
                    "give); 0 means a majority of it. 4 with the default weights: any two of "
                    "aHash, dHash, pHash and PDQ (weight 2 each) agreeing on one picture."
                ),
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
