"""BankVersion.read is reused for 50 ms outside a transaction: another process's bank change
is seen within that, this process's own at once, and a transaction always reads afresh."""

import time
import uuid

import pytest
from django.db import connection, transaction

from hashing.models import BankVersion


def _changed_elsewhere() -> uuid.UUID:
    """A bank change as another process commits it: the row changes, this process's
    BankVersion.bump never runs."""
    token = uuid.uuid4()
    BankVersion.objects.update_or_create(pk=1, defaults={"token": token})
    return token


@pytest.mark.django_db(transaction=True)
def test_a_read_is_reused_briefly_and_another_processs_change_is_seen_within_the_ttl():
    first = _changed_elsewhere()
    assert BankVersion.read()[0] == first
    second = _changed_elsewhere()
    assert BankVersion.read()[0] == first  # within 50 ms: the read is reused
    time.sleep(BankVersion.READ_TTL_S + 0.01)
    assert BankVersion.read()[0] == second
    assert BankVersion.read(fresh=True)[0] == second


@pytest.mark.django_db(transaction=True)
def test_this_processs_own_change_is_seen_at_once():
    _changed_elsewhere()
    before = BankVersion.read()
    with transaction.atomic():  # bump runs in the transaction that changes banks
        BankVersion.bump(added=[1])
    after = BankVersion.read()
    assert after[0] != before[0] and after[1] == before[1] + 1


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_every_read_goes_to_the_database_and_is_not_kept():
    committed = _changed_elsewhere()
    assert BankVersion.read()[0] == committed  # a reusable read outside any transaction
    with pytest.raises(RuntimeError), transaction.atomic():
        uncommitted = _changed_elsewhere()
        assert connection.in_atomic_block
        assert BankVersion.read()[0] == uncommitted  # not the earlier read
        raise RuntimeError("rolled back")
    # The rolled-back token was never kept: the next read is the committed one.
    assert BankVersion.read()[0] == committed
    assert BankVersion.read(fresh=True)[0] == committed
