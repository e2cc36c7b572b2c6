"""Policy edits, recorded field by field (who, when, old → new)."""

from django.db import transaction

from .models import Policy, PolicyChange


def record_policy_change(policy: Policy, changed_fields: list[str], user) -> Policy:
    with transaction.atomic():
        old = Policy.objects.select_for_update().filter(pk=policy.pk).first()
        policy.save()
        PolicyChange.objects.bulk_create(
            [
                PolicyChange(
                    policy=policy,
                    field=name,
                    changed_by=user,
                    old_value="" if old is None else str(getattr(old, name)),
                    new_value=str(getattr(policy, name)),
                )
                for name in changed_fields
            ]
        )
    return policy
