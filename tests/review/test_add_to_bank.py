"""'Add to bank' on a rejected review item: copies posted later are blocked by the banks."""

import pytest
from django.urls import reverse

from hashing.models import Bank, BankContent
from hashing.services import create_bank
from review.pipeline import analyse_item
from tests.conftest import encode
from tests.review.review_factories import rejected_item
from uploads.intake import ingest_bytes
from uploads.models import MediaItem


@pytest.fixture
def rejected(uploader, moderator, photo):
    """A moderator rejected this cat photo (the policy had sent it to review)."""
    return rejected_item(encode(photo("chelsea")), uploader, moderator)


@pytest.fixture
def block_bank(policy_admin):
    return create_bank(name="known bad", kind=Bank.Kind.BLOCK, actor=policy_admin)


def add(client, item, bank, note="reported twice"):
    url = reverse("review:add_to_bank", args=[item.uuid])
    return client.post(url, {"bank": bank.pk, "note": note})


def test_a_policy_admin_adds_a_rejected_item_and_a_resized_copy_is_then_blocked(
    client, policy_admin, outsider, rejected, block_bank, photo
):
    client.force_login(policy_admin)
    page = client.get(reverse("review:item", args=[rejected.uuid])).content.decode()
    assert "Add to bank" in page
    response = add(client, rejected, block_bank)
    assert response.status_code == 302
    content = BankContent.objects.get(source_item=rejected, variant_of=None)
    assert content.bank == block_bank
    assert "known bad" in client.get(response["Location"]).content.decode()

    cat = photo("chelsea")
    copy = cat.resize((cat.width // 2, cat.height // 2))
    # A new file posted by someone else; the bank vote is checked before duplicates.
    item = ingest_bytes(encode(copy, quality=50), name="c.jpg", source="web", uploader=outsider)
    analyse_item(item.pk)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.FLAGGED and item.reason == "bank_match"


def test_a_moderator_without_bank_permissions_cannot_add(client, moderator, rejected, block_bank):
    client.force_login(moderator)
    page = client.get(reverse("review:item", args=[rejected.uuid])).content.decode()
    assert "Add to bank" not in page
    assert add(client, rejected, block_bank).status_code == 403
    assert not BankContent.objects.exists()


def test_only_rejected_items_can_be_added_and_a_bank_is_required(
    client, policy_admin, uploader, rejected, block_bank, jpeg
):
    client.force_login(policy_admin)
    passed = ingest_bytes(jpeg("coffee"), name="c.jpg", source="web", uploader=uploader)
    response = add(client, passed, block_bank)
    assert response.status_code == 400 and "Only a rejected item" in response.content.decode()
    url = reverse("review:add_to_bank", args=[rejected.uuid])
    response = client.post(url, {"bank": "999999"})
    assert response.status_code == 400 and "Choose a bank" in response.content.decode()
    assert not BankContent.objects.exists()
