"""moderation_site.bulk.insert_rows: COPY on PostgreSQL, bulk_create on SQLite, the same rows."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from hashing import services
from hashing.models import BankChange, BankContent, BankEntry
from moderation_site.bulk import insert_rows

pytestmark = pytest.mark.django_db


def test_rows_get_the_prototypes_values_their_own_and_ids_in_order(moderator):
    bank = services.create_bank("bulk")
    before = timezone.now()
    contents = insert_rows(
        BankContent,
        BankContent(
            bank=bank, source=BankContent.Source.IMPORT, name="list.csv", created_by=moderator
        ),
        [{"note": f"row {i}", "external_id": f"x{i}" if i % 2 else ""} for i in range(5)],
    )
    assert len(contents) == 5 and len(set(contents)) == 5
    made = {c.pk: c for c in BankContent.objects.filter(pk__in=contents)}
    for i, pk in enumerate(contents):
        content = made[pk]
        assert content.note == f"row {i}"
        assert content.external_id == (f"x{i}" if i % 2 else "")
        assert content.bank_id == bank.pk and content.name == "list.csv"
        assert content.created_by_id == moderator.pk and content.created_at >= before
    entries = insert_rows(
        BankEntry,
        BankEntry(bank=bank),
        [
            {"content_id": pk, "algorithm": "pdq", "value": f"{i:064x}"}
            for i, pk in enumerate(contents)
        ],
    )
    rows = {e.pk: e for e in BankEntry.objects.filter(pk__in=entries)}
    assert [rows[pk].value for pk in entries] == [f"{i:064x}" for i in range(5)]
    assert all(e.enabled and e.frame == 0 and e.note == "" for e in rows.values())
    # The ids come from the table's own sequence: a later ordinary insert follows them.
    later = BankContent.objects.create(bank=bank, source=BankContent.Source.IMPORT)
    assert later.pk > max(contents)
    assert insert_rows(BankContent, BankContent(bank=bank), []) == []


def test_a_row_breaking_a_constraint_writes_nothing_of_its_batch():
    bank = services.create_bank("bulk")
    content = BankContent.objects.create(bank=bank, source=BankContent.Source.IMPORT)
    twice = {"content_id": content.pk, "algorithm": "pdq", "value": "0" * 64}
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(BankEntry, BankEntry(bank=bank), [twice, twice])  # one hash per algorithm
    assert not BankEntry.objects.filter(bank=bank).exists()


def test_a_json_value_is_prepared_by_its_field_and_read_back_as_it_was():
    bank = services.create_bank("bulk")
    detail = {"entries": {"pdq": "0" * 64}, "note": 'a "quoted"\tnote', "n": [1, 2.5, None]}
    changes = insert_rows(
        BankChange,
        BankChange(bank=bank, bank_name=bank.name, action=BankChange.Action.HASHES_ADDED),
        [{"detail": detail}, {"detail": {}}],
    )
    rows = {c.pk: c for c in BankChange.objects.filter(pk__in=changes)}
    assert [rows[pk].detail for pk in changes] == [detail, {}]
    assert all(c.bank_name == "bulk" and c.action == "hashes_added" for c in rows.values())
