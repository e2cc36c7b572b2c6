"""Issue 9 §3: the moderator's item page says what matched (bank, reference, each voter and
its distance; the past item copied) with the matched picture beside the item when it is
stored; the label weights say in admin what they do, and a shirtless man can reach review.

Items are real uploads analysed by the pipeline (NudeNet included), against banks made
through hashing.services, so the page is checked against what the matcher really recorded.
"""

import html as htmllib
import importlib
import io
import re

import pytest
from django.apps import apps
from django.urls import reverse

from hashing.algorithms import ALGORITHMS
from hashing.models import Bank
from hashing.services import add_images, add_item_to_bank, create_bank
from review import decisions
from review.admin import LABEL_WEIGHTS_HELP
from review.categories import DEFAULT_CATEGORIES, Detection, category_scores
from review.classifiers import ClassifierResult
from review.classifiers.nudenet import DEFAULT_LABELS
from review.classifiers.registry import default_label_map
from review.models import ClassifierLabel, PolicyChange
from review.outcomes import PASS, REVIEW, decide
from review.pipeline import analyse_item
from tests.conftest import encode
from tests.review.review_factories import rejected_item
from uploads.intake import ingest_bytes
from uploads.models import MediaItem

VOTER_ROW = re.compile(
    r'<tr class="voter-(\w+)">\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*'
    r"<td>(.*?)</td>",
    re.S,
)


def voter_rows(html: str, section: str) -> dict[str, tuple[str, str, str, str]]:
    """{voter label: (state, vote, distance, threshold)} of the section's voter table."""
    start = html.index(section)
    table = html[start : html.index("</table>", start)]
    return {
        htmllib.unescape(label): (state, htmllib.unescape(vote), distance, htmllib.unescape(th))
        for state, label, vote, distance, th in VOTER_ROW.findall(table)
    }


def label(name: str) -> str:
    return ALGORITHMS[name].label


def upload(data: bytes, user, name="copy.jpg") -> MediaItem:
    item = ingest_bytes(data, name=name, source="web", uploader=user)
    analyse_item(item.pk)
    item.refresh_from_db()
    return item


def page(client, user, item) -> str:
    client.force_login(user)
    response = client.get(reverse("review:item", args=[item.uuid]))
    assert response.status_code == 200
    return response.content.decode()


def original(item) -> str:
    return reverse("uploads:original", args=[item.uuid])


@pytest.fixture
def block_bank(policy_admin):
    return create_bank(name="known bad pictures", kind=Bank.Kind.BLOCK, actor=policy_admin)


@pytest.fixture
def rejected(uploader, moderator, photo):
    """A cat photo, analysed (its hashes stored), that a moderator rejected."""
    return rejected_item(encode(photo("chelsea")), uploader, moderator)


def half(image):
    return image.resize((image.width // 2, image.height // 2))


# -- a bank match ------------------------------------------------------------------------


def test_a_bank_match_names_the_bank_the_reference_and_every_voter_with_its_distance(
    client, moderator, outsider, block_bank, policy_admin, photo
):
    reference = encode(photo("astronaut"))
    (content,) = add_images(
        block_bank, [("astronaut-reference.jpg", reference)], actor=policy_admin, note="report 7"
    )["added"]
    item = upload(encode(half(photo("astronaut")), quality=50), outsider)
    assert item.status == MediaItem.Status.FLAGGED and item.reason == "bank_match"
    bank = item.matches["bank"]

    html = page(client, moderator, item)
    assert "Bank match: “known bad pictures”" in html
    assert "“astronaut-reference.jpg”" in html and f"content #{content.pk}" in html
    assert "Reference image" in html and "report 7" in html
    agreeing = [name for name, vote in bank["per_voter"].items() if vote["vote"]]
    assert (
        f"{len(agreeing)} hash voters agreed on this reference (vote weight {bank['votes']} of "
        f"{bank['eligible']}; {bank['quorum']} needed), so it matched" in html
    )
    rows = voter_rows(html, "Bank match")
    assert set(rows) == {label(name) for name in bank["per_voter"]}
    for name, vote in bank["per_voter"].items():
        state, said, distance, threshold = rows[label(name)]
        limit = bank["thresholds"][name]
        if vote["vote"]:
            assert (state, said) == ("agreed", "agreed")
            assert distance.split(" ")[0] == str(vote["distance"])
            assert threshold == f"≤ {limit}"
        else:
            assert state in ("disagreed", "no_hash")
    assert sum(r[0] == "agreed" for r in rows.values()) == len(agreeing)
    # Nothing of a reference image is kept: the page says so, beside the item's picture.
    assert "Reference picture not kept" in html
    assert original(item) in html
    assert html.count("/original/") == 2  # the item at the top and beside the reference


def test_a_voter_beyond_its_threshold_shows_its_distance_to_the_reference(
    client, moderator, outsider, block_bank, policy_admin, policy, photo
):
    """PDQ's threshold lowered to 5: the half-size copy (PDQ about 12 bits off) is still
    matched by the other voters, and PDQ's row says how far it was."""
    policy.voters.filter(algorithm="pdq").update(threshold=5)
    (content,) = add_images(
        block_bank, [("ref.jpg", encode(photo("astronaut")))], actor=policy_admin
    )["added"]
    item = upload(encode(half(photo("astronaut")), quality=50), outsider)
    assert item.reason == "bank_match" and not item.matches["bank"]["per_voter"]["pdq"]["vote"]
    hashes = item.analyses.get().hashes
    entry = int(content.entries.get(algorithm="pdq").value, 16)
    expected = min(
        (int(hashes["pdq"], 16) ^ entry).bit_count(),
        (int(hashes["mirror"]["pdq"], 16) ^ entry).bit_count(),
    )
    assert expected > 5

    state, said, distance, threshold = voter_rows(page(client, moderator, item), "Bank match")[
        label("pdq")
    ]
    assert (state, said, threshold) == ("disagreed", "did not agree", "> 5")
    assert distance.split(" ")[0] == str(expected)


def test_a_voter_whose_hash_says_too_little_is_shown_as_abstaining(
    client, moderator, outsider, block_bank, policy_admin, photo
):
    """A printed page: its dHash is almost all one value, so dHash abstains (on the
    reference and on the copy) while the other voters match."""
    add_images(block_bank, [("leaflet.png", encode(photo("page"), "PNG"))], actor=policy_admin)
    item = upload(encode(photo("page"), "JPEG", quality=60), outsider)
    assert item.reason == "bank_match", item.matches
    hashes = item.analyses.get().hashes
    assert "dhash" not in item.matches["bank"]["per_voter"]  # abstained in the vote

    rows = voter_rows(page(client, moderator, item), "Bank match")
    state, said, distance, _ = rows[label("dhash")]
    assert state == "abstained" and distance == "–"
    assert said == f"abstained: low-information hash (quality {hashes['quality']['dhash']})"
    assert any(r[0] == "agreed" for r in rows.values())


def test_an_analysis_recorded_under_the_former_algorithm_names_reads_as_today(
    client, moderator, outsider, block_bank, policy_admin, photo
):
    """Before hashing 0004, "phash" was the row DCT (now phash_simple) and "mhash" the
    median DCT (now phash); rows were renamed, analysis records were not."""
    add_images(block_bank, [("ref.jpg", encode(photo("astronaut")))], actor=policy_admin)
    item = upload(encode(half(photo("astronaut")), quality=50), outsider)
    today = voter_rows(page(client, moderator, item), "Bank match")
    former = {"phash_simple": "phash", "phash": "mhash"}

    def back(mapping):
        return {former.get(k, k): v for k, v in mapping.items()}

    analysis = item.analyses.get()
    hashes = back(analysis.hashes)
    hashes.update(quality=back(hashes["quality"]), mirror=back(hashes.get("mirror", {})))
    bank = item.matches["bank"]
    bank.update(thresholds=back(bank["thresholds"]), per_voter=back(bank["per_voter"]))
    assert "mhash" in hashes and "mhash" in bank["per_voter"]
    analysis.hashes, analysis.matches = hashes, {**item.matches, "bank": bank}
    analysis.save()
    MediaItem.objects.filter(pk=item.pk).update(matches=analysis.matches)
    assert voter_rows(page(client, moderator, item), "Bank match") == today


def test_a_bank_match_in_one_frame_of_an_animation_is_shown_with_that_frames_voters(
    client, moderator, outsider, block_bank, policy_admin, photo
):
    size = (320, 240)
    banned = photo("astronaut").resize(size)
    add_images(block_bank, [("ref.png", encode(banned, "PNG"))], actor=policy_admin)
    frames = [photo(n).resize(size) for n in ("chelsea", "coffee", "rocket")] + [banned] * 2
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    item = upload(buf.getvalue(), outsider, name="anim.gif")
    bank = item.matches["bank"]
    assert item.reason == "bank_match" and bank.get("frame") in (4, 5), item.reason_text

    html = page(client, moderator, item)
    assert f"Bank match: “known bad pictures” (frame {bank['frame']})" in html
    rows = voter_rows(html, "Bank match")
    for name, vote in bank["per_voter"].items():
        if vote["vote"]:
            assert rows[label(name)][2].split(" ")[0] == str(vote["distance"])


def test_a_reference_added_from_a_reviewed_item_shows_that_items_picture_side_by_side(
    client, moderator, outsider, rejected, block_bank, policy_admin, photo
):
    content = add_item_to_bank(rejected, block_bank, actor=policy_admin)
    item = upload(encode(half(photo("chelsea")), quality=50), outsider)
    assert item.reason == "bank_match"

    html = page(client, moderator, item)
    section = html[html.index("Bank match") : html.index("</article>", html.index("Bank match"))]
    assert original(item) in section and original(rejected) in section  # side by side
    assert "Reviewed item" in section and f"content #{content.pk}" in section
    assert reverse("review:item", args=[rejected.uuid]) in section
    assert "not kept" not in section


# -- a copy of a past item -----------------------------------------------------------------


def test_a_near_copy_shows_the_past_item_its_status_and_the_voters_that_agreed(
    client, moderator, outsider, rejected, photo
):
    item = upload(encode(half(photo("chelsea")), quality=50), outsider)
    assert item.reason == "near_copy_of_rejected" and item.duplicate_of_id == rejected.pk
    (copy,) = item.matches["duplicates"]

    html = page(client, moderator, item)
    assert "Near copy of a past item (rejected)" in html
    assert reverse("review:item", args=[rejected.uuid]) in html
    assert (
        f"{len(copy['voters'])} hash voters agreed (vote weight {copy['votes']} of "
        f"{copy['eligible']}; {copy['quorum']} needed)" in html
    )
    assert "The outcome rests on this copy." in html
    section = html[html.index("Near copy") : html.index("</article>", html.index("Near copy"))]
    assert original(item) in section and original(rejected) in section  # side by side
    rows = voter_rows(html, "Near copy")
    agreed = {name: d for name, d in copy["voters"].items()}
    assert {lbl for lbl, r in rows.items() if r[0] == "agreed"} == {label(n) for n in agreed}
    for name, distance in agreed.items():
        assert rows[label(name)][2].split(" ")[0] == str(distance)
    for state, _, distance, threshold in rows.values():
        if state == "disagreed":  # computed from both items' stored hashes
            assert int(distance.split(" ")[0]) > int(threshold.removeprefix("> "))


def test_a_past_item_decided_since_shows_its_status_then_and_now(
    client, moderator, policy_admin, outsider, rejected, photo
):
    item = upload(encode(half(photo("chelsea")), quality=50), outsider)
    decisions.override_decision(policy_admin, rejected, "approve", "Our mistake")
    html = page(client, moderator, item)
    assert "Near copy of a past item (rejected, now approved)" in html


def test_where_the_past_items_file_is_gone_the_page_says_it_is_not_kept(
    client, moderator, outsider, rejected, photo
):
    item = upload(encode(half(photo("chelsea")), quality=50), outsider)
    rejected.file.storage.delete(rejected.file.name)
    html = page(client, moderator, item)
    assert "Picture not kept: the past item&#x27;s file is no longer stored." in html
    assert original(rejected) not in html


def test_an_item_nothing_matched_says_so(client, moderator, outsider, jpeg):
    item = upload(jpeg("coffee"), outsider, name="coffee.jpg")
    html = page(client, moderator, item)
    assert "No bank reference and no past item matched this item." in html
    assert "Hash voter" not in html


# -- who may see it --------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["uploader", "outsider"])
def test_without_moderator_rights_there_is_no_page_and_no_picture(
    client, request, policy_admin, rejected, block_bank, photo, persona
):
    """`uploader` posted the rejected item; `outsider` posted the copy. Neither moderates."""
    add_item_to_bank(rejected, block_bank, actor=policy_admin)
    outsider = request.getfixturevalue("outsider")
    item = upload(encode(half(photo("chelsea")), quality=50), outsider)
    assert item.reason == "bank_match"
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("review:item", args=[item.uuid]))
    assert response.status_code == 403
    assert "known bad pictures" not in response.content.decode()
    theirs = rejected if persona == "outsider" else item
    assert client.get(original(theirs)).status_code == 404  # someone else's flagged picture
    own = item if persona == "outsider" else None
    if own is not None:  # the uploader's own item page says nothing of banks or references
        mine = client.get(reverse("uploads:item", args=[own.uuid])).content.decode()
        assert "known bad pictures" not in mine and "Hash voter" not in mine


# -- label weights in admin -----------------------------------------------------------------


def test_the_label_admin_says_what_a_weight_does_and_shows_the_default(client, policy_admin):
    client.force_login(policy_admin)
    changelist = reverse("admin:review_classifierlabel_changelist")
    listing = htmllib.unescape(client.get(changelist).content.decode())
    assert LABEL_WEIGHTS_HELP in listing
    assert "counts s × weight towards the category" in listing
    assert "0 stops the label counting" in listing
    row = ClassifierLabel.objects.get(provider="nudenet", label="MALE_BREAST_EXPOSED")
    row.weight = 0.7  # an admin's value; the default stays beside it
    row.save()
    listing = client.get(changelist).content.decode()
    assert re.search(r'value="0\.7".*?<td class="field-default_weight">0\.6</td>', listing, re.S)
    form = htmllib.unescape(
        client.get(reverse("admin:review_classifierlabel_change", args=[row.pk])).content.decode()
    )
    assert LABEL_WEIGHTS_HELP in form  # the form's description
    help_text = str(ClassifierLabel._meta.get_field("weight").help_text)
    assert "0 stops the label counting" in help_text and help_text in form


# -- the defaults: a shirtless man can reach review ---------------------------------------------


def nudenet_outcome(label_name: str, score: float, labels=None):
    result = ClassifierResult("nudenet", [Detection((label_name,), score)])
    scores = category_scores([result], labels or default_label_map(["nudenet"]), DEFAULT_CATEGORIES)
    return scores, decide(scores=scores, rules=DEFAULT_CATEGORIES)


def test_a_confident_exposed_male_breast_reaches_suggestive_review():
    scores, outcome = nudenet_outcome("MALE_BREAST_EXPOSED", 0.9)
    assert scores["suggestive"] == pytest.approx(0.54) and scores["explicit"] == 0.0
    assert (outcome.outcome, outcome.reason) == (REVIEW, "suggestive_for_review")
    # A hesitant detection stays below the review threshold; the old weight never got there.
    assert nudenet_outcome("MALE_BREAST_EXPOSED", 0.8)[1].outcome == PASS
    old = {"nudenet": {"male_breast_exposed": [("suggestive", 0.5)]}}
    assert nudenet_outcome("MALE_BREAST_EXPOSED", 0.99, old)[1].outcome == PASS


@pytest.mark.parametrize(
    ("score", "reason"), [(0.4, "explicit_for_review"), (0.7, "explicit_flagged")]
)
def test_exposed_male_genitalia_is_explicit(score, reason):
    assert DEFAULT_LABELS["MALE_GENITALIA_EXPOSED"] == ("explicit", 1.0)
    assert nudenet_outcome("MALE_GENITALIA_EXPOSED", score)[1].reason == reason


def test_the_seeded_policy_uses_the_new_default(policy):
    assert policy.label_map()["nudenet"]["male_breast_exposed"] == [("suggestive", 0.6)]


def test_the_migration_moves_rows_still_at_the_old_default_and_keeps_an_admins_choice(policy):
    migration = importlib.import_module(
        "review.migrations.0006_label_weight_help_and_male_breast_default"
    )
    explicit = policy.categories.get(name="explicit")
    row = policy.labels.get(label="MALE_BREAST_EXPOSED")
    extra = ClassifierLabel.objects.create(
        policy=policy,
        provider="nudenet",
        label="MALE_BREAST_EXPOSED",
        category=explicit,
        weight=0.5,
    )
    row.weight = 0.5  # as a policy seeded before this change has it
    row.save()
    migration.forwards(apps, None)
    row.refresh_from_db(), extra.refresh_from_db()
    assert row.weight == 0.6 and extra.weight == 0.5  # another category's row is not the default
    (change,) = PolicyChange.objects.all()
    assert (change.old_value, change.new_value, change.changed_by) == ("0.5", "0.6", None)

    row.weight = 0.55  # an admin's choice stays
    row.save()
    migration.forwards(apps, None)
    row.refresh_from_db()
    assert row.weight == 0.55
    row.weight = 0.6
    row.save()
    migration.backwards(apps, None)
    row.refresh_from_db()
    assert row.weight == 0.5
