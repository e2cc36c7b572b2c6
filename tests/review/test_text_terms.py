"""Term banks: normalised matching with spans in the original text, quoting, allow terms,
admin edits audited, and a term's effect on a text item's verdict."""

import pytest

from hashing.textnorm import analyse, normalise
from review.models import Category, PolicyChange, Term
from review.terms import TermSet, compile_term, terms_for
from uploads import intake, text
from uploads.models import MediaItem


def bank(*rows) -> TermSet:
    return TermSet(tuple(compile_term(t, c, k) for c, k, t in rows))


SLUR = bank(("hate", "block", "faggot*"), ("harassment", "block", "idiot"))


@pytest.mark.parametrize(
    "written",
    [
        "you faggot",
        "you f4gg0t",
        "you f a g g o t",
        "you f.a.g.g.o.t!",
        "you faaaaggooooot",
        "you ｆａｇｇｏｔ",  # fullwidth
        "you fаggоt",  # Cyrillic а and о
        "you f\u200bag\u200bgot",  # zero-width spaces
        "you FAGGOTS",
        "you f@gg0tz",
    ],
)
def test_a_block_term_is_found_however_it_is_written_with_its_original_span(written):
    found = SLUR.match(written).found
    assert [(m.term, m.category) for m in found] == [("faggot*", "hate")], written
    (match,) = found
    assert match.start == 4  # where the author's word starts...
    assert match.end >= len(written.rstrip("!")) - 1  # ...to its end (a plural s aside)


def test_words_inside_other_words_do_not_match():
    assert not SLUR.match("idiotic schemes by an idiosyncratic idiot").found[1:]
    written = "idiotic schemes by an idiosyncratic idiot"
    (m,) = SLUR.match(written).found
    assert (m.term, m.start, m.end) == ("idiot", written.rindex("idiot"), len(written))
    scunthorpe = bank(("sexual", "block", "ass"))
    assert not scunthorpe.match("a classic glass of wine, assess the class").found
    assert scunthorpe.match("what an a s s").found


def test_plural_and_prefix_terms():
    assert SLUR.match("such idiots").found
    assert not SLUR.match("idiotism").found
    assert SLUR.match("faggotry").found  # the trailing * takes any ending


def test_a_quoted_term_counts_less_and_an_allow_term_discounts_it():
    quoted = SLUR.match('He called me "a faggot" and I reported him').found[0]
    assert (quoted.quoted, quoted.score) == (True, 0.6)
    plain = SLUR.match("He called me a faggot").found[0]
    assert (plain.quoted, plain.score) == (False, 1.0)
    reclaimed = bank(("hate", "block", "dyke"), ("hate", "allow", "proud dyke"))
    matches = reclaimed.match("Proud dyke and happy")
    assert matches.block_scores() == {"hate": 0.0}
    assert matches.allowed_categories == {"hate"}
    countered = bank(("hate", "block", "faggot*"), ("hate", "allow", "is hateful"))
    scores = countered.match("Calling people faggots is hateful").block_scores()
    assert scores == {"hate": 0.6}  # a person still looks; nothing is flagged on it


def test_normalising_keeps_numbers_and_punctuation_that_are_not_leetspeak():
    assert normalise("Buy ch3ap p!lls for $5 now!") == "buy cheap pils for 5 now"
    assert normalise("4 of 5 people") == "4 of 5 people"
    assert normalise("Sooooo goood") == normalise("so good") == "so god"
    assert normalise("E a r n money, I am a cat") == "earn money i am a cat"
    assert analyse("Café").letters == "cafe"


@pytest.fixture
def take(django_capture_on_commit_callbacks, uploader):
    def send(body, context=None) -> MediaItem:
        with django_capture_on_commit_callbacks(execute=True):
            result = intake.take(
                [text.text_submission(body, context)], source="api", uploader=uploader
            )
        (item,) = result.accepted
        item.refresh_from_db()
        return item

    return send


@pytest.mark.django_db
def test_a_term_bank_flags_a_leetspeak_slur_and_records_the_span(policy, take):
    hate = Category.objects.get(policy=policy, name="hate")
    Term.objects.create(policy=policy, category=hate, kind="block", text="faggot*")
    item = take("look at this f4gg0t lol")
    assert (item.status, item.reason) == ("flagged", "hate_flagged"), item.reason_text
    (span,) = item.analyses.get().raw["textmodel"]["terms"]
    assert (span["start"], span["end"], span["matched"]) == (13, 19, "f4gg0t")

    # Disabled (an edit): the next analysis no longer sees it.
    Term.objects.filter(text="faggot*").update(enabled=False)
    again = take("look at this f4gg0t lol")
    assert again.analyses.get().raw["textmodel"]["terms"] == []
    assert terms_for(policy).terms == ()


@pytest.mark.django_db
def test_term_edits_in_admin_are_audited_as_policy_changes(client, policy_admin, policy):
    client.force_login(policy_admin)
    hate = Category.objects.get(policy=policy, name="hate")
    added = client.post(
        "/admin/review/term/add/",
        {
            "category": hate.pk,
            "kind": "block",
            "text": "vermin",
            "note": "dehumanising",
            "enabled": "on",
        },
    )
    assert added.status_code == 302, added.content[:2000]
    term = Term.objects.get()
    assert (term.policy, term.enabled) == (policy, True)
    changed = client.post(
        f"/admin/review/term/{term.pk}/change/",
        {"category": hate.pk, "kind": "block", "text": "vermin", "note": "x", "enabled": ""},
    )
    assert changed.status_code == 302
    term.refresh_from_db()
    assert term.enabled is False
    fields = list(
        PolicyChange.objects.filter(field__startswith="term ")
        .order_by("pk")
        .values_list("field", "old_value", "new_value", "changed_by")
    )
    assert fields == [
        ("term block hate:vermin", "", "added", policy_admin.pk),
        ("term block hate:vermin note", "dehumanising", "x", policy_admin.pk),
        ("term block hate:vermin enabled", "True", "False", policy_admin.pk),
    ]
    assert client.post(f"/admin/review/term/{term.pk}/delete/").status_code == 403
    short = client.post(
        "/admin/review/term/add/", {"category": hate.pk, "kind": "block", "text": "x!"}
    )
    assert b"at least two letters" in short.content
