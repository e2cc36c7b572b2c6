"""Hash lists that mean what they say (issue 9, part 5).

Lists are written here the way their makers write them: imagehash and pdqhash run on the
original picture, hex in a CSV, usually without the ``content`` column. Uploads go the
way of an upload (encode, ``open_for_hashing``, ``fingerprint``) or through the pipeline.
"""

from functools import cache

import imagehash
import numpy as np
import pdqhash
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from PIL import Image
from skimage import data

from hashing import labels, matcher, services
from hashing.algorithms import ALGORITHMS, algorithm_named, fingerprint, names
from hashing.models import BankChange, BankContent, BankEntry
from review.models import Policy
from review.pipeline import analyse_item
from tests.conftest import encode
from tests.factories import MediaItemFactory
from tests.hashing.test_voting import give_one_vote_each, make_fp, near, random_hashes
from uploads.intake import ingest_bytes
from uploads.kinds import open_for_hashing
from uploads.models import MediaItem

IMAGEHASH = {
    "ahash": imagehash.average_hash,
    "dhash": imagehash.dhash,
    "phash": imagehash.phash,
    "phash_simple": imagehash.phash_simple,
}
# Ten photos whose hashes are balanced or not as their algorithm's are (the label check
# needs at least 8 hashes of a label).
LIST_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "horse",
    "immunohistochemistry",
    "hubble_deep_field",
    "gravel",
)


@cache
def photo(name: str) -> Image.Image:
    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


@cache
def made_with(func_name: str, name: str) -> str:
    """The hex a list maker gets from imagehash (or pdqhash) on the original picture."""
    if func_name == "pdq":
        vector, _ = pdqhash.compute(np.ascontiguousarray(np.asarray(photo(name))))
        return ALGORITHMS["pdq"].to_hex(int("".join(str(int(b)) for b in vector), 2))
    return str(getattr(imagehash, func_name)(photo(name)))


def csv_list(rows, content=False) -> list[str]:
    """rows: (label, hex, note); content: group rows by note (the optional 4th column)."""
    header = "hash_type,hash_value,note" + (",content" if content else "")
    return [header] + [
        f"{label},{value},{note}" + (f",{note}" if content else "") for label, value, note in rows
    ]


def radial(cx: float, cy: float, inner, outer, power: float = 1.0) -> Image.Image:
    """A radial gradient, 640x480: what an innocent wallpaper or vignette upload is."""
    y, x = np.mgrid[0:480, 0:640]
    r = np.hypot(x / 640 - cx, y / 480 - cy)
    t = (r / r.max())[..., None] ** power
    rgb = np.array(inner, float) * (1 - t) + np.array(outer, float) * t
    return Image.fromarray(rgb.astype(np.uint8))


def linear(c0, c1) -> Image.Image:
    t = np.tile(np.linspace(0, 1, 640), (480, 1))[..., None]
    return Image.fromarray((np.array(c0, float) * (1 - t) + np.array(c1, float) * t).astype("u1"))


def query(image: Image.Image, fmt: str = "PNG", **kw) -> dict:
    return fingerprint(open_for_hashing(encode(image, fmt, **kw)), mirrored=True)


@pytest.fixture
def bank(db, admin_user):
    return services.create_bank("shared list", actor=admin_user)


# -- names ---------------------------------------------------------------------------------


def test_names_are_imagehashs_and_the_former_median_name_is_an_alias():
    assert algorithm_named("phash")._func is imagehash.phash
    assert algorithm_named("phash_simple")._func is imagehash.phash_simple
    assert algorithm_named("average_hash") is ALGORITHMS["ahash"]
    assert algorithm_named("MHASH") is ALGORITHMS["phash"]  # this product's former name
    assert ALGORITHMS["phash"].default_threshold == 12  # the median-DCT hash's measured 12
    assert ALGORITHMS["phash_simple"].default_threshold == 8  # the row DCT's 8


def test_a_list_naming_both_mhash_and_phash_is_an_old_export_and_is_refused(bank):
    old_export = ["phash,00ff00ff00ff00ff,a,c1", "mhash,0f0f0f0f0f0f0f0f,a,c1"]
    with pytest.raises(services.BankError, match="Rename phash to phash_simple, then mhash"):
        services.import_hash_list(bank, old_export)
    assert not BankEntry.objects.exists()
    services.import_hash_list(bank, ["mhash,0f0f0f0f0f0f0f0f,median"])
    assert BankEntry.objects.get().algorithm == "phash"


def test_hash_functions_this_product_does_not_compute_are_refused_by_name(bank):
    with pytest.raises(services.BankError, match="“whash” is imagehash.whash, the wavelet"):
        services.import_hash_list(bank, ["whash,00ff00ff00ff00ff"])


# -- the reported bug: a list made with imagehash.phash ----------------------------------------


def test_a_list_made_with_imagehash_phash_blocks_the_same_picture(bank, uploader):
    """It imported "successfully" and never matched while our phash was phash_simple."""
    rows = [("phash", made_with("phash", n), n) for n in LIST_PHOTOS]
    report = services.import_hash_list(bank, csv_list(rows))
    assert report.warnings == ()
    item = ingest_bytes(encode(photo("coffee")), name="c.jpg", source="web", uploader=uploader)
    analyse_item(item.pk)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.FLAGGED and item.reason == "bank_match"
    for name in ("astronaut", "rocket", "chelsea"):
        for copy in (
            query(photo(name), "JPEG", quality=90),
            query(photo(name), "JPEG", quality=30),
        ):
            result = matcher.vote(copy, Policy.current())
            assert result["blocked"] and result["strict"], name
            assert result["per_voter"]["phash"]["vote"]
            assert result["per_voter"]["phash"]["distance"] <= 6


# -- labels checked ---------------------------------------------------------------------------


def test_phash_simple_hashes_labelled_phash_are_warned_about_and_never_match(bank):
    rows = [("phash", made_with("phash_simple", n), n) for n in LIST_PHOTOS]
    report = services.import_hash_list(bank, csv_list(rows))
    (warning,) = report.warnings
    assert "are not phash hashes" in warning and "phash_simple" in warning
    assert warning in report.summary()
    assert not matcher.vote(query(photo("coffee")), Policy.current())["blocked"]


def test_phash_hashes_labelled_phash_simple_are_warned_as_looking_like_phash(bank):
    rows = [("phash_simple", made_with("phash", n), n) for n in LIST_PHOTOS]
    report = services.import_hash_list(bank, csv_list(rows))
    (warning,) = report.warnings
    assert "they look like phash hashes, not phash_simple" in warning
    change = BankChange.objects.get(action=BankChange.Action.HASHES_IMPORTED)
    assert change.detail["warnings"] == [warning]


def test_sample_pictures_detect_the_wrong_label_and_refuse_the_list(bank):
    rows = [("phash_simple", made_with("phash", n), n) for n in LIST_PHOTOS[:4]]
    samples = [(f"{n}.jpg", encode(photo(n))) for n in ("coffee", "rocket")]
    with pytest.raises(services.BankError) as refused:
        services.import_hash_list(bank, csv_list(rows), samples=samples)
    message = str(refused.value)
    assert "look like phash hashes, not phash_simple: 2 of 2 sample picture(s)" in message
    assert not BankEntry.objects.exists()
    relabelled = [("phash", value, note) for _, value, note in rows]
    report = services.import_hash_list(bank, csv_list(relabelled), samples=samples)
    assert report.checks == (
        "2 of 2 sample picture(s) found among the rows labelled phash (nearest distance 0).",
    )


def test_samples_not_in_the_list_are_said_to_be_so_and_refuse_nothing(bank):
    rows = [("phash", made_with("phash", n), n) for n in LIST_PHOTOS[:3]]
    report = services.import_hash_list(
        bank, csv_list(rows), samples=[("m.jpg", encode(photo("moon")))]
    )
    (check,) = report.checks
    assert check.startswith("None of the 1 sample picture(s) is near a row labelled phash")
    assert report.added_entries == 3


def test_a_balanced_label_needs_enough_hashes_to_be_judged():
    values = [int(made_with("phash_simple", n), 16) for n in LIST_PHOTOS]
    assert labels.balance_warning("phash", values[: labels.MIN_HASHES - 1]) is None
    assert labels.balance_warning("phash", values) is not None
    assert labels.balance_warning("phash_simple", values) is None  # the right label
    pdq = [int(made_with("pdq", n), 16) for n in LIST_PHOTOS]
    assert labels.balance_warning("pdq", pdq) is None
    sha256_like = [int.from_bytes(bytes([i]) * 32, "big") ^ (1 << i) for i in range(10)]
    assert "are not pdq hashes" in labels.balance_warning("pdq", sha256_like)


# -- references with too few hashes: the strict rule ---------------------------------------------


def low_detail_uploads() -> dict[str, Image.Image]:
    """Innocent pictures that, before the strict rule, a one-hash list row blocked alone:
    each has a hash within its voter's threshold of a photo's hash (checked below)."""
    return {
        "radial gradient, dark centre": radial(0.7, 0.6, (0, 0, 0), (200, 220, 255), 1.6),
        "radial gradient, warm corner": radial(0.2, 0.8, (250, 200, 120), (40, 20, 80)),
        "linear gradient": linear((20, 40, 200), (250, 240, 30)),
    }


@pytest.fixture
def one_hash_rows(bank):
    """Every 64-bit hash of a few photos, one row each and no content column: what a list
    of "known hashes" without its pictures' grouping is."""
    photos = ("clock", "rocket", "page", "colorwheel", "astronaut")
    rows = [
        (label, made_with(func.__name__, n), n) for n in photos for label, func in IMAGEHASH.items()
    ]
    return services.import_hash_list(bank, csv_list(rows))


def test_a_one_hash_reference_does_not_block_gradients_or_flat_pictures(one_hash_rows, policy):
    for name, image in low_detail_uploads().items():
        result = matcher.vote(query(image), policy)
        close = [
            voter
            for voter, vote in result["per_voter"].items()
            if vote["distance"] is not None and vote["distance"] <= result["thresholds"][voter]
        ]
        assert close, f"{name}: no hash within its threshold; the test shows nothing"
        assert not result["blocked"] and result["strict"], name
    flat = matcher.vote(query(Image.new("RGB", (640, 480), (135, 206, 235))), policy)
    assert not flat["blocked"] and flat["voters"] == 0


def test_a_one_hash_reference_still_blocks_the_picture_and_a_recompressed_copy(
    one_hash_rows, policy
):
    for copy in (
        query(photo("rocket"), "JPEG", quality=95),
        query(photo("rocket"), "JPEG", quality=30),
    ):
        result = matcher.vote(copy, policy)
        assert result["blocked"] and result["strict"]
        (voter,) = [n for n, v in result["per_voter"].items() if v["vote"]]
        assert result["per_voter"][voter]["distance"] <= result["strict_thresholds"][voter]
        # One voter's row: its weight (2 or 1 by default) is all that can vote, and needed.
        weight = policy.voter_settings()[voter].weight
        assert (result["votes"], result["eligible"], result["quorum"]) == (weight,) * 3


def test_a_gradient_upload_through_the_pipeline_gets_no_strike(one_hash_rows, uploader):
    image = low_detail_uploads()["radial gradient, warm corner"]
    item = ingest_bytes(encode(image, "PNG"), name="g.png", source="web", uploader=uploader)
    analyse_item(item.pk)
    item.refresh_from_db()
    assert item.reason != "bank_match" and item.author.strikes == 0


def test_a_short_content_counts_only_close_votes_of_voters_strong_alone(bank, policy):
    """A full reference, but the upload leaves two informative voters: fewer than the 3 a
    full quorum needs, so aHash does not count and phash must be within 6, not 12.

    In counts of voters (one vote each, a majority): under the default weights aHash and
    pHash are 4, a full quorum, so the content would not be short (see the next test)."""
    give_one_vote_each(policy)
    hashes = random_hashes(7)
    services.import_hash_list(
        bank,
        csv_list([(n, ALGORITHMS[n].to_hex(v), "pic") for n, v in hashes.items()], content=True),
    )
    quality = {"ahash": 100, "phash": 100, "dhash": 30, "phash_simple": 30}
    fp = make_fp(hashes, {"ahash": 0, "phash": 8})
    fp["quality"] = {**quality, "pdq": 20}
    result = matcher.vote(fp, policy)
    assert result["voters"] == 2 and result["strict"] and not result["blocked"]
    assert result["strict_thresholds"] == {"phash": 6} and result["full_quorum"] == 3
    fp["phash"] = near(hashes["phash"], 5)
    result = matcher.vote(fp, policy)
    assert result["blocked"] and (result["votes"], result["eligible"], result["quorum"]) == (
        1,
        1,
        1,
    )
    assert (
        not result["per_voter"]["ahash"]["vote"] and result["per_voter"]["ahash"]["distance"] == 0
    )


def test_by_default_a_content_short_of_weight_4_counts_only_close_votes(bank, policy):
    """Under the default weights the upload leaves pHash (2) and phash_simple (1): 3, short
    of the 4 a full reference needs, so both must be close on their own (phash within 6,
    not 12; phash_simple within 4). Without the strict rule, phash at 8 and phash_simple at
    0 would be 3 of the 3 able to vote, and block."""
    hashes = random_hashes(7)
    services.import_hash_list(
        bank,
        csv_list([(n, ALGORITHMS[n].to_hex(v), "pic") for n, v in hashes.items()], content=True),
    )
    fp = make_fp(hashes, {"phash": 8, "phash_simple": 0})
    fp["quality"] = {"ahash": 30, "dhash": 30, "phash": 100, "phash_simple": 100, "pdq": 20}
    result = matcher.vote(fp, policy)
    assert result["voters"] == 3 and result["full_quorum"] == 4 and result["strict"]
    assert result["strict_thresholds"] == {"phash_simple": 4, "phash": 6}
    assert not result["blocked"]
    assert (result["votes"], result["eligible"], result["quorum"]) == (1, 3, 3)
    phash = result["per_voter"]["phash"]
    assert not phash["vote"] and phash["distance"] == 8
    fp["phash"] = near(hashes["phash"], 6)
    result = matcher.vote(fp, policy)
    assert result["blocked"]
    assert (result["votes"], result["eligible"], result["quorum"]) == (3, 3, 3)


def test_a_pdq_list_as_threatexchange_shares_it_blocks_on_one_close_detailed_match(bank, policy):
    rows = [("pdq", made_with("pdq", n), n) for n in ("coffee", "clock", "astronaut")]
    report = services.import_hash_list(bank, csv_list(rows))
    assert report.groups[0].sentence() == (
        "3 references with one hash each (pdq); each blocks alone only within distance 31, "
        "never on a low-detail upload"
    )
    result = matcher.vote(query(photo("coffee"), "JPEG", quality=40), policy)
    # PDQ weighs 2 by default and is all that can vote on a PDQ row: 2 of 2.
    assert result["blocked"] and result["strict"]
    assert (result["votes"], result["eligible"], result["quorum"]) == (2, 2, 2)
    # The clock photo's own PDQ quality is 34-38: it abstains, so its row blocks nothing.
    clock = query(photo("clock"))
    assert clock["quality"]["pdq"] < 50 and not matcher.vote(clock, policy)["blocked"]


# -- what the import says -------------------------------------------------------------------------


def test_the_import_says_how_many_references_it_made_and_how_they_vote(bank):
    one_each = [("phash", made_with("phash", n), n) for n in LIST_PHOTOS]
    report = services.import_hash_list(bank, csv_list(one_each))
    assert (report.rows, report.added_entries, report.added_contents) == (10, 10, 10)
    assert report.summary() == (
        "Imported 10 hashes as 10 references with one hash each (phash); each blocks alone "
        "only within distance 6, never on a low-detail upload."
    )
    grouped = [
        (label, made_with(func, n), n)
        for n in ("brick", "moon", "grass", "retina")
        for label, func in (("ahash", "average_hash"), ("dhash", "dhash"), ("phash", "phash"))
    ]
    report = services.import_hash_list(bank, csv_list(grouped, content=True))
    assert (report.added_entries, report.added_contents) == (12, 4)
    assert report.summary() == (
        "Imported 12 hashes as 4 references with 3 hashes each (ahash, dhash, phash); "
        "vote weight 4 of 6 needed."
    )
    assert BankContent.objects.filter(bank=bank).count() == 14


def test_a_mixed_list_reports_each_kind_of_reference_and_what_cannot_block(bank):
    rows = [
        ("ahash", made_with("average_hash", "coffee"), "a"),
        ("ahash", made_with("average_hash", "rocket"), "b"),
        ("phash", made_with("phash", "coffee"), "c"),
        ("dhash", made_with("dhash", "coffee"), "d"),
        ("phash_simple", made_with("phash_simple", "coffee"), "d"),
    ]
    report = services.import_hash_list(bank, csv_list(rows, content=True))
    assert [g.sentence() for g in report.groups] == [
        "2 references with one hash each (ahash): short of the vote weight 4 a quorum needs, "
        "and these never block alone (a lone aHash matches plain gradients), so they can "
        "block nothing until a content column groups each picture's hashes",
        "1 reference with 2 hashes each (dhash, phash_simple): short of the vote weight 4 a "
        "quorum needs, so vote weight 3 of 3 needed (dhash within 4, phash_simple within 4), "
        "never on a low-detail upload",
        "1 reference with one hash each (phash); each blocks alone only within distance 6, "
        "never on a low-detail upload",
    ]
    assert report.summary().startswith("Imported 5 hashes as 4 references: 2 references")
    detail = BankChange.objects.get(action=BankChange.Action.HASHES_IMPORTED).detail
    assert detail["votes"] == [g.sentence() for g in report.groups]


def test_the_admin_import_page_shows_the_report_and_checks_samples(client, admin_user, bank):
    client.force_login(admin_user)
    url = reverse("admin:hashing_bank_import", args=[bank.pk])
    rows = [("phash_simple", made_with("phash", n), n) for n in LIST_PHOTOS[:3]]
    text = "\n".join(csv_list(rows)).encode()
    sample = SimpleUploadedFile("coffee.jpg", encode(photo("coffee")), "image/jpeg")
    page = client.post(url, {"file": SimpleUploadedFile("l.csv", text), "samples": [sample]})
    assert page.status_code == 200
    assert "look like phash hashes, not phash_simple" in page.content.decode()
    assert "Check with sample images" in page.content.decode()
    assert not BankEntry.objects.exists()

    fixed = "\n".join(csv_list([("phash", v, n) for _, v, n in rows])).encode()
    response = client.post(url, {"file": SimpleUploadedFile("l.csv", fixed)}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        "“shared list”: Imported 3 hashes as 3 references with one hash each (phash); each "
        "blocks alone only within distance 6, never on a low-detail upload."
    ]


# -- the renaming migrations --------------------------------------------------------------------


def _migrate(targets=None):
    """Migrate to `targets` (default: every app's latest) and return the models there."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migrations_rename_rows_and_keep_each_threshold_with_its_hash():
    policy = Policy.current()  # seeded with today's names: phash_simple 8, phash 12
    policy.voters.filter(algorithm="phash_simple").update(threshold=7)
    item = MediaItemFactory()
    for name in ("ahash", "phash_simple", "phash"):
        item.fingerprints.create(algorithm=name, value=f"{name}-value"[:16])
    content = BankContent.objects.create(bank=services.create_bank("b"), source="import")
    content.entries.create(bank=content.bank, algorithm="phash_simple", value="1" * 16)
    content.entries.create(bank=content.bank, algorithm="phash", value="2" * 16)
    old_names = [("hashing", "0003_fingerprint_rows"), ("review", "0007_confirm_model_flags")]
    try:
        old = _migrate(old_names)
        voters = dict(
            old.get_model("review", "Voter").objects.values_list("algorithm", "threshold")
        )
        kept = {"ahash", "dhash", "phash", "mhash", "pdq"}  # the image voters of then
        assert {n: t for n, t in voters.items() if n in kept} == {
            "ahash": 8,
            "dhash": 10,
            "phash": 7,
            "mhash": 12,
            "pdq": 31,
        }
        fps = old.get_model("hashing", "Fingerprint").objects.values_list("algorithm", "value")
        assert sorted(fps) == [
            ("ahash", "ahash-value"),
            ("mhash", "phash-value"),
            ("phash", "phash_simple-val"),
        ]
        # The new code seeded a default row into the old-named policy before migrating.
        old.get_model("review", "Voter").objects.create(
            policy_id=policy.pk, algorithm="phash_simple", threshold=8
        )
    finally:
        _migrate()
    voters = dict(policy.voters.values_list("algorithm", "threshold"))
    voters = {n: t for n, t in voters.items() if n in names("image")}  # video, text: theirs
    assert voters == {"ahash": 8, "dhash": 10, "phash_simple": 7, "phash": 12, "pdq": 31}
    assert dict(item.fingerprints.values_list("value", "algorithm")) == {
        "ahash-value": "ahash",
        "phash_simple-val": "phash_simple",
        "phash-value": "phash",
    }
    assert dict(content.entries.values_list("value", "algorithm")) == {
        "1" * 16: "phash_simple",
        "2" * 16: "phash",
    }
