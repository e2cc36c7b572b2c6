"""Policy thresholds are edited in Django admin and every change is recorded."""

from django.urls import reverse

from review.models import Policy, PolicyChange


def admin_form(policy, **changes):
    fields = [f.name for f in Policy._meta.fields if f.name not in ("id", "updated_at")]
    data = {name: getattr(policy, name) for name in fields}
    data.update(changes)
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_a_policy_admin_changes_a_threshold_and_the_change_is_recorded(client, policy_admin):
    policy = Policy.current()
    client.force_login(policy_admin)
    url = reverse("admin:review_policy_change", args=[policy.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, admin_form(policy, explicit_flag_at=0.75, lease_minutes=15))
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.explicit_flag_at == 0.75 and policy.lease_minutes == 15
    changes = {c.field: c for c in PolicyChange.objects.all()}
    assert set(changes) == {"explicit_flag_at", "lease_minutes"}
    assert changes["explicit_flag_at"].old_value == "0.6"
    assert changes["explicit_flag_at"].new_value == "0.75"
    assert changes["explicit_flag_at"].changed_by == policy_admin


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
