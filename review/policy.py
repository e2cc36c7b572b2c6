"""Which policy judges an item, and policy edits recorded field by field (who, when,
old → new), its rows included.

The site has one policy (``Policy.current()``); an intake above review (an API client, a
Slack workspace) may judge its items by a policy of its own (another row, ``add_policy``).
It says so through ``register_policy_source`` in its ``apps.py``: review never imports the
apps above it.
"""

from collections.abc import Callable

from django.db import transaction
from django.db.models import Max

from .models import SITE_POLICY, Policy, PolicyChange

_SOURCES: dict[str, Callable[[object], Policy | None]] = {}


def register_policy_source(source: str, resolver: Callable[[object], Policy | None]) -> None:
    """``resolver(item)`` names the policy for items of ``source`` (``MediaItem.source``),
    or None for the site's policy. One resolver per source: a second replaces the first."""
    _SOURCES[source] = resolver


def policy_for(item) -> Policy:
    """The policy ``item`` is judged by: its intake's own, else the site's."""
    resolver = _SOURCES.get(getattr(item, "source", ""))
    policy = resolver(item) if resolver else None
    return policy or Policy.current()


def add_policy(policy: Policy, user=None) -> Policy:
    """Save an unsaved policy beside the site's, with the default rows (``seed_defaults``),
    and record it as added. Its key is chosen here, under the site policy's row lock: the
    site's row is made with pk 1 given, which PostgreSQL's id sequence never counted."""
    with transaction.atomic():
        Policy.current()
        list(Policy.objects.select_for_update().filter(pk=SITE_POLICY))
        policy.pk = Policy.objects.aggregate(top=Max("pk"))["top"] + 1
        policy.save(force_insert=True)
        policy.seed_defaults()
        PolicyChange.objects.create(
            policy=policy, field="policy", new_value="added", changed_by=user
        )
    return policy


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
