"""The text kind's hashes: exact after normalising, SimHash for near copies; banks of known
bad messages and repeated spam through the one pipeline."""

import pytest
from django.urls import reverse

from hashing import matcher, services
from hashing.algorithms import algorithms_for, fingerprint
from hashing.models import Bank, BankChange, BankContent
from hashing.text import EXACT, MINHASH, add_texts, minhash
from hashing.textnorm import normalise
from review.models import Category
from uploads import intake, text
from uploads.models import MediaItem
from uploads.text import TextSubject

SPAM = "Earn money fast from home, visit our site for the details today"


def test_the_text_algorithms_are_registered_for_the_text_kind():
    assert {a.name for a in algorithms_for("text")} >= {"text_exact", "text_minhash"}
    fp = fingerprint(TextSubject("Hello there, friend"), "text")
    assert set(fp) == {"text_exact", "text_minhash", "quality"}  # no mirror for text
    assert fp["quality"]["text_minhash"] == 71  # "helo there friend": 17 characters of 24


def test_the_exact_hash_is_equal_for_any_spelling_of_the_same_words():
    plain = EXACT.compute(TextSubject(SPAM))
    for variant in (
        SPAM.upper(),
        "Earn m0ney f4st fr0m h0me, v!sit 0ur s1te f0r the deta1ls t0day",
        "Earn   money fast from home... visit our site for the details today!!!",
        "Еarn money fast from home, visit our site for the details today",  # Cyrillic Е
    ):
        assert EXACT.compute(TextSubject(variant)) == plain, variant
    assert EXACT.compute(TextSubject(SPAM + " now")) != plain


def test_minhash_keeps_near_texts_near_and_others_far():
    base = minhash(normalise(SPAM))
    near = minhash(normalise(SPAM.replace("today", "right now")))
    other = minhash(normalise("The council meets on Tuesday to discuss the new bridge"))
    assert (base ^ near).bit_count() <= MINHASH.default_threshold
    assert (base ^ other).bit_count() > 2 * MINHASH.default_threshold
    assert not MINHASH.informative(MINHASH.signal(TextSubject("you too")))


@pytest.fixture
def take(django_capture_on_commit_callbacks, uploader):
    def send(body) -> MediaItem:
        with django_capture_on_commit_callbacks(execute=True):
            result = intake.take([text.text_submission(body)], source="api", uploader=uploader)
        (item,) = result.accepted
        item.refresh_from_db()
        return item

    yield send
    matcher.matcher.reset()


@pytest.mark.django_db
def test_a_bank_of_known_bad_messages_blocks_variants_of_them(policy, take):
    bank = services.create_bank("known scams", kind=Bank.Kind.BLOCK)
    ((content, created),) = add_texts(bank, [SPAM])
    assert created and set(content.entries.values_list("algorithm", flat=True)) == {
        "text_exact",
        "text_minhash",
    }
    leet = take("EARN M0NEY F4ST fr0m h0me!!! v!sit our s1te for the details today")
    assert (leet.status, leet.reason) == ("flagged", "bank_match"), leet.reason_text
    votes = leet.matches["bank"]["per_voter"]
    assert votes["text_exact"]["vote"] and votes["text_exact"]["distance"] == 0

    near = take("Earn money fast from home, visit our site for all the details today")
    assert (near.status, near.reason) == ("flagged", "bank_match"), near.matches["bank"]
    assert near.matches["bank"]["per_voter"]["text_exact"]["vote"] is False

    other = take("Our choir rehearses on Thursday evenings in the old church hall")
    assert other.reason != "bank_match"


@pytest.mark.django_db
def test_a_repeat_of_rejected_spam_goes_to_a_person(policy, take, moderator):
    Category.objects.filter(policy=policy, media_kind="text").update(review_at=1.0, flag_at=1.0)
    first = take(SPAM)
    assert first.status == MediaItem.Status.PASSED
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    again = take(SPAM.replace("for the", "for all the"))  # 7 bits away
    assert (again.status, again.reason) == ("review", "near_copy_of_rejected"), again.matches


@pytest.mark.django_db
def test_an_admin_adds_known_bad_messages_to_a_bank_and_their_variants_are_blocked(
    client, admin_user, policy, take
):
    bank = services.create_bank("known scams", kind=Bank.Kind.BLOCK)
    client.force_login(admin_user)
    url = reverse("admin:hashing_bank_add_texts", args=[bank.pk])
    assert client.get(url).status_code == 200
    page = client.get(reverse("admin:hashing_bank_change", args=[bank.pk])).content.decode()
    assert "Add known bad messages" in page
    refused = client.post(url, {"messages": "  \n \n"})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    punctuation = client.post(url, {"messages": f"{SPAM}\n!!! ???"})
    assert "no letters or digits" in punctuation.content.decode()
    assert not BankContent.objects.filter(bank=bank).exists()  # nothing half-added
    sent = client.post(url, {"messages": f"{SPAM}\n{SPAM}\nsend me your password now"})
    assert sent.status_code == 302
    assert BankContent.objects.filter(bank=bank).count() == 2
    added = BankChange.objects.filter(bank=bank, content__isnull=False)
    assert added.count() == 2 and set(added.values_list("actor", flat=True)) == {admin_user.pk}
    again = client.post(url, {"messages": SPAM}, follow=True)
    assert "1 were in the bank already" in again.content.decode()
    leet = take("EARN M0NEY F4ST fr0m h0me!!! v!sit our s1te for the details today")
    assert (leet.status, leet.reason) == ("flagged", "bank_match")
