"""Policy thresholds are edited in Django admin and every change is recorded."""

from django.urls import reverse

from review.models import Policy, PolicyChange

INLINES = {
    "categories": ("name", "label", "media_kind", "review_at", "flag_at", "rank", "at_least"),
    "voters": ("algorithm", "enabled", "threshold", "weight"),
}


def admin_form(policy, rows=None, **changes):
    """The change form as the browser posts it: the policy's fields and its inline rows.

    `rows`: {"categories": {"explicit": {"flag_at": 0.75}}, "voters": {"pdq": {...}}}."""
    fields = [f.name for f in Policy._meta.fields if f.name not in ("id", "updated_at")]
    data = {name: getattr(policy, name) for name in fields}
    data.update(changes)
    for prefix, names in INLINES.items():
        objects = list(getattr(policy, prefix).all())
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": len(objects),
                f"{prefix}-INITIAL_FORMS": len(objects),
                f"{prefix}-MIN_NUM_FORMS": 0,
                f"{prefix}-MAX_NUM_FORMS": 1000,
            }
        )
        for i, obj in enumerate(objects):
            key = getattr(obj, "name", None) or obj.algorithm
            row = {name: getattr(obj, name) for name in names}
            row["at_least"] = getattr(obj, "at_least_id", None) or ""
            row.update(((rows or {}).get(prefix) or {}).get(key, {}))
            data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
            data[f"{prefix}-{i}-id"] = obj.pk
            data[f"{prefix}-{i}-policy"] = policy.pk
    return {
        k: ("on" if v is True else v) for k, v in data.items() if v is not False and v is not None
    }


def test_a_policy_admin_changes_a_threshold_and_the_change_is_recorded(client, policy_admin):
    policy = Policy.current()
    client.force_login(policy_admin)
    url = reverse("admin:review_policy_change", args=[policy.pk])
    assert client.get(url).status_code == 200
    rows = {"categories": {"explicit": {"flag_at": 0.75}}, "voters": {"pdq": {"threshold": 28}}}
    response = client.post(url, admin_form(policy, rows, lease_minutes=15))
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.lease_minutes == 15
    assert policy.categories.get(name="explicit").flag_at == 0.75
    assert policy.voter_settings()["pdq"].threshold == 28
    changes = {c.field: c for c in PolicyChange.objects.all()}
    assert set(changes) == {"explicit flag_at", "lease_minutes", "voter pdq threshold"}
    assert changes["explicit flag_at"].old_value == "0.6"
    assert changes["explicit flag_at"].new_value == "0.75"
    assert changes["explicit flag_at"].changed_by == policy_admin
    assert (changes["voter pdq threshold"].old_value, changes["voter pdq threshold"].new_value) == (
        "31",
        "28",
    )


def test_a_voter_threshold_beyond_its_algorithm_is_refused(client, policy_admin):
    policy = Policy.current()
    client.force_login(policy_admin)
    url = reverse("admin:review_policy_change", args=[policy.pk])
    response = client.post(url, admin_form(policy, {"voters": {"ahash": {"threshold": 40}}}))
    assert response.status_code == 200
    assert "At most 12 for aHash." in response.content.decode()
    assert PolicyChange.objects.count() == 0


def test_an_unknown_provider_is_refused_with_a_message(client, policy_admin):
    policy = Policy.current()
    client.force_login(policy_admin)
    url = reverse("admin:review_policy_change", args=[policy.pk])
    response = client.post(url, admin_form(policy, providers="nudenet,skynet"))
    assert response.status_code == 200
    assert "Unknown provider(s): skynet" in response.content.decode()
    assert PolicyChange.objects.count() == 0


def test_a_moderator_cannot_edit_the_policy(client, moderator):
    client.force_login(moderator)
    url = reverse("admin:review_policy_change", args=[Policy.current().pk])
    assert client.get(url).status_code == 302  # not staff: sent to the admin login


def test_a_label_weight_is_edited_in_admin_and_recorded(client, policy_admin):
    policy = Policy.current()
    label = policy.labels.get(provider="nudenet", label="BELLY_EXPOSED")
    client.force_login(policy_admin)
    url = reverse("admin:review_classifierlabel_change", args=[label.pk])
    form = {
        "provider": "nudenet",
        "label": "BELLY_EXPOSED",
        "category": label.category_id,
        "weight": 0.25,
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert policy.label_map()["nudenet"]["belly_exposed"] == [("suggestive", 0.25)]
    (change,) = PolicyChange.objects.all()
    assert (change.field, change.old_value, change.new_value) == (
        "label nudenet:BELLY_EXPOSED weight",
        "0.5",
        "0.25",
    )
    assert change.changed_by == policy_admin
    bad = client.post(reverse("admin:review_classifierlabel_add"), {**form, "provider": "x"})
    assert bad.status_code == 200 and "Unknown provider." in bad.content.decode()
