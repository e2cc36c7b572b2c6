"""A client's own policy (ApiClient.policy): made in admin beside the site's, it judges
the client's items (review.policy.policy_for, the "api" source), and the site's keeps
judging everyone else's."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from review.models import SITE_POLICY, Category, ClassifierLabel, Policy, PolicyChange
from review.policy import add_policy, policy_for
from tests.api.conftest import key_client
from tests.review.test_policy_admin import admin_form
from uploads.models import MediaItem

ANALYSES = "/api/v1/analyses"


def analyse(client, data: bytes, capture) -> dict:
    with capture(execute=True):
        answer = client.post(
            ANALYSES,
            {"file": SimpleUploadedFile("venus.jpg", data), "user_uuid": "u-1"},
            format="multipart",
        )
    assert answer.status_code == 202, answer.content
    return client.get(answer.json()["status_url"]).json()


def test_an_admin_adds_a_second_policy_with_the_default_rows(client, policy_admin, policy):
    client.force_login(policy_admin)
    assert client.get(reverse("admin:review_policy_add")).status_code == 200
    data = admin_form(policy, quorum=6)
    data = {k: v for k, v in data.items() if "-" not in k}  # the add page has no rows
    answer = client.post(reverse("admin:review_policy_add"), data)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    added = Policy.objects.exclude(pk=SITE_POLICY).get()
    assert answer["Location"] == reverse("admin:review_policy_change", args=[added.pk])
    assert added.quorum == 6 and str(added) == f"Policy {added.pk}"
    assert str(Policy.current()) == "Moderation policy" and Policy.current().quorum != 6
    names = set(added.categories.values_list("name", flat=True))
    assert (
        {"explicit", "suggestive"} <= names == set(policy.categories.values_list("name", flat=True))
    )
    assert added.voter_settings() == policy.voter_settings()
    assert added.labels.count() == policy.labels.count() > 0
    assert PolicyChange.objects.filter(policy=added, new_value="added").exists()
    # Both change pages work, and an edit of the new one leaves the site's alone.
    for row in (policy, added):
        assert client.get(reverse("admin:review_policy_change", args=[row.pk])).status_code == 200
    rows = {"categories": {"explicit": {"flag_at": 0.3, "review_at": 0.2}}}
    url = reverse("admin:review_policy_change", args=[added.pk])
    answer = client.post(url, admin_form(added, rows))
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert added.categories.get(name="explicit").flag_at == 0.3
    assert policy.categories.get(name="explicit").flag_at == 0.6
    listing = client.get(reverse("admin:review_policy_changelist")).content.decode()
    assert "Moderation policy" in listing and f"Policy {added.pk}" in listing


def test_a_label_added_in_admin_counts_in_its_categorys_policy(client, policy_admin, policy):
    other = add_policy(Policy())
    category = other.categories.get(name="suggestive")
    client.force_login(policy_admin)
    page = client.get(reverse("admin:review_classifierlabel_add")).content.decode()
    assert f"suggestive ({other})" in page and f"suggestive ({policy})" in page
    answer = client.post(
        reverse("admin:review_classifierlabel_add"),
        {"provider": "nudenet", "label": "FACE_FEMALE", "category": category.pk, "weight": 1},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    label = ClassifierLabel.objects.get(label="FACE_FEMALE", category=category)
    assert label.policy == other
    assert not policy.labels.filter(label="FACE_FEMALE").exists()


def test_a_clients_stricter_policy_decides_the_same_image_otherwise_than_the_sites(
    db, policy, venus_bytes, django_capture_on_commit_callbacks
):
    # The site looks at explicit content only from 0.99: the painting passes there. The
    # strict client keeps the defaults (flagged from 0.6).
    Category.objects.filter(policy=policy).update(review_at=0.99, flag_at=1.0)
    strict = add_policy(Policy())
    strict_row, strict_client = key_client("strict")
    strict_row.policy = strict
    strict_row.save()
    _, site_client = key_client("lenient")

    on_site = analyse(site_client, venus_bytes, django_capture_on_commit_callbacks)
    on_strict = analyse(strict_client, venus_bytes, django_capture_on_commit_callbacks)
    assert (on_site["decision"], on_site["reason"]) == ("pass", "clean")
    assert (on_strict["decision"], on_strict["reason"]) == ("flagged", "explicit_flagged")
    assert on_strict["scores"] == on_site["scores"]  # the same findings, judged otherwise
    items = {i.submission.client.name: i for i in MediaItem.objects.select_related("submission")}
    assert policy_for(items["strict"]) == strict
    assert policy_for(items["lenient"]) == policy


def test_without_a_policy_of_its_own_the_sites_applies_and_edits_reach_it_at_once(
    db, policy, venus_bytes, django_capture_on_commit_callbacks
):
    row, client = key_client("partner")
    flagged = analyse(client, venus_bytes, django_capture_on_commit_callbacks)
    assert flagged["decision"] == "flagged"
    row.policy = add_policy(Policy())
    Category.objects.filter(policy=row.policy).update(review_at=0.99, flag_at=1.0)
    row.save()  # the key's client is read afresh (api.authentication)
    passed = analyse(client, venus_bytes, django_capture_on_commit_callbacks)
    assert passed["decision"] == "pass"
