"""Policy edits, recorded field by field (who, when, old → new), its rows included."""

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


def record_row_changes(policy: Policy, formset, user) -> list[PolicyChange]:
    """Save an admin formset of policy rows (voters, categories, labels) and record each
    change as "<row> <field>": old → new; a new row is "added", a removed one "deleted"."""
    changes = []
    with transaction.atomic():
        for form in formset.initial_forms:
            if form in formset.deleted_forms or not form.has_changed():
                continue
            for name in form.changed_data:
                changes.append(
                    PolicyChange(
                        policy=policy,
                        field=f"{form.instance} {name}"[:64],
                        old_value=str(form.initial.get(name, "")),
                        new_value=str(form.cleaned_data.get(name, "")),
                        changed_by=user,
                    )
                )
        deleted = [f"{form.instance}" for form in formset.deleted_forms if form.instance.pk]
        formset.save()
        for obj in formset.new_objects:
            changes.append(
                PolicyChange(policy=policy, field=f"{obj}"[:64], new_value="added", changed_by=user)
            )
        for name in deleted:
            changes.append(
                PolicyChange(policy=policy, field=name[:64], old_value="deleted", changed_by=user)
            )
        PolicyChange.objects.bulk_create(changes)
    return changes
