"""POST hashes and GET|POST lookup: every hash of a picture, hashed as an upload is; the
matches of a hash in every bank with distances, and the verdict the upload path reaches."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from hashing import services
from hashing.algorithms import ALGORITHMS, names
from hashing.models import Bank
from review.models import Policy
from tests.api.conftest import key_with
from tests.conftest import encode

IMAGE = names("image")  # the algorithms a picture is hashed with
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def flip(hex_value: str, bits: int) -> str:
    value = int(hex_value, 16)
    for bit in range(bits):
        value ^= 1 << (bit * 7)
    return format(value, f"0{len(hex_value)}x")


@pytest.fixture
def block_bank(db):
    return services.create_bank("known bad")


@pytest.fixture
def banked(block_bank, jpeg):
    """A reference picture in the block bank, with the client's id for it."""
    data = jpeg("chelsea")
    (content,) = services.add_images(
        block_bank, [("cat.jpg", data)], note="case 17", external_id="their-17"
    )["added"]
    return content, data


def reference_hex(data: bytes) -> dict:
    fp, _ = services.fingerprint_reference(data)
    return {name: ALGORITHMS[name].to_hex(fp[name]) for name in IMAGE}


@pytest.fixture
def image_server(serve, jpeg):
    body = jpeg("coffee")
    return f"{serve({'/coffee.jpg': body})}/coffee.jpg", body


# -- POST hashes ----------------------------------------------------------------------


def test_every_hash_of_a_file_exactly_as_an_upload_is_hashed(api, jpeg):
    data = jpeg("astronaut")
    answer = api.post(reverse("api:hashes"), {"file": _file(data)}, format="multipart")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["hashes"] == reference_hex(data)
    assert set(body["quality"]) == set(IMAGE) and body["quality"]["pdq"] >= 50
    assert all(body["informative"].values()) and set(body["mirror"]) == set(IMAGE)
    assert body["kind"] == "image" and len(body["sha256"]) == 64 and body["total_frames"] == 1


def test_the_image_as_the_body_or_by_url_gives_the_same_hashes(api, image_server, settings):
    url, data = image_server
    raw = api.generic("POST", reverse("api:hashes"), data, content_type="image/jpeg")
    assert raw.status_code == 200, raw.content
    settings.URL_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    fetched = api.post(reverse("api:hashes"), {"url": url}, format="json")
    assert fetched.status_code == 200, fetched.content
    assert raw.json()["hashes"] == fetched.json()["hashes"] == reference_hex(data)


def test_a_refused_address_is_400_not_fetched(api, image_server):
    url, _ = image_server  # loopback, not allowed without the test allowance
    answer = api.post(reverse("api:hashes"), {"url": url}, format="json")
    assert answer.status_code == 400 and answer.json()["code"] in ("refused_address", "blocked")


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"<html>not an image</html>", "image/jpeg", "unsupported_format"),
        (b"", "application/octet-stream", None),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "image/jpeg", None),
    ],
)
def test_bad_bytes_are_400_in_the_one_shape(api, body, content_type, code):
    answer = api.generic("POST", reverse("api:hashes"), body, content_type=content_type)
    assert answer.status_code == 400, answer.content
    assert {"code", "detail"} <= set(answer.json())
    if code:
        assert answer.json()["code"] == code


def test_nothing_sent_is_400_and_over_the_limit_is_413(api, jpeg, settings):
    assert api.post(reverse("api:hashes"), {}, format="json").status_code == 400
    settings.UPLOAD_MAX_BYTES = 1000
    answer = api.generic("POST", reverse("api:hashes"), jpeg("coffee"), content_type="image/jpeg")
    assert answer.status_code == 413 and answer.json()["code"] == "too_large"


def test_an_animation_has_the_hashes_of_each_sampled_frame(api, photo):
    frames = [photo("coffee").resize((200, 150)), photo("chelsea").resize((200, 150))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    body = api.generic("POST", reverse("api:hashes"), data, content_type="image/gif").json()
    assert body["total_frames"] == 2 and [f["number"] for f in body["frames"]] == [1, 2]
    assert body["frames"][0]["hashes"] == body["hashes"] != body["frames"][1]["hashes"]


def test_hashes_and_lookup_need_the_lookup_scope(db, jpeg):
    api = key_with("banks:read")
    for answer in (
        api.post(reverse("api:hashes"), {"file": _file(jpeg("coffee"))}, format="multipart"),
        api.get(reverse("api:lookup"), {"algorithm": "pdq", "hash": PDQ}),
    ):
        assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    assert APIClient().get(reverse("api:lookup")).status_code == 401


# -- lookup ---------------------------------------------------------------------------


def test_a_pdq_hash_finds_the_banked_picture_with_its_distance_and_ids(api, banked):
    content, data = banked
    pdq = reference_hex(data)["pdq"]
    answer = api.get(reverse("api:lookup"), {"algorithm": "pdq", "hash": flip(pdq, 3)})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    (match,) = body["matches"]
    assert match == {
        "bank": "known bad",
        "bank_id": content.bank_id,
        "bank_kind": "block",
        "content_id": content.pk,
        "variant": False,
        "entry_id": content.entries.get(algorithm="pdq").pk,
        "algorithm": "pdq",
        "distance": 3,
        "mirrored": False,
        "external_id": "their-17",
        "note": "case 17",
    }
    verdict = body["verdict"]
    # As an upload whose other hashes abstained: PDQ alone blocks within 31 (the strict
    # rule, as ThreatExchange and HMA use PDQ).
    assert verdict["blocked"] and verdict["reason"] == "bank_match" and verdict["strict"]
    assert verdict["content_id"] == content.pk and verdict["bank"] == "known bad"
    assert verdict["per_voter"]["pdq"]["vote"] and verdict["per_voter"]["pdq"]["distance"] == 3
    assert body["query"] == {"source": "hash", "hashes": {"pdq": flip(pdq, 3)}, "quality": {}}


def test_names_other_lists_use_work_and_so_do_hmas_parameters(api, banked):
    _, data = banked
    hexes = reference_hex(data)
    by_alias = api.get(
        reverse("api:lookup"), {"signal_type": "PDQHASH", "signal": hexes["pdq"].upper()}
    )
    assert by_alias.status_code == 200 and by_alias.json()["matches"][0]["distance"] == 0
    aha = api.post(
        reverse("api:lookup"),
        {"algorithm": "average_hash", "hash": hexes["ahash"]},
        format="json",
    )
    assert aha.status_code == 200 and aha.json()["matches"][0]["algorithm"] == "ahash"
    # As an upload whose other hashes abstained: a lone aHash never blocks (a plain
    # gradient matches it), by the strict rule.
    assert not aha.json()["verdict"]["blocked"] and aha.json()["verdict"]["strict"]


def test_several_hashes_of_one_picture_vote_together(api, banked):
    content, data = banked
    hexes = reference_hex(data)
    answer = api.post(reverse("api:lookup"), {"hashes": hexes}, format="json")
    body = answer.json()
    assert {m["algorithm"] for m in body["matches"] if m["content_id"] == content.pk} == set(IMAGE)
    assert body["verdict"]["blocked"] and body["verdict"]["votes"] == 9


def test_a_near_copy_sent_as_bytes_is_blocked_as_its_upload_would_be(api, banked, photo):
    content, _ = banked
    copy = encode(photo("chelsea").resize((300, 200)), "JPEG", quality=70)
    answer = api.post(reverse("api:lookup"), {"file": _file(copy)}, format="multipart")
    body = answer.json()
    assert answer.status_code == 200 and body["query"]["source"] == "file"
    assert body["verdict"]["blocked"] and body["verdict"]["content_id"] == content.pk
    assert body["verdict"]["detail"].startswith("Matches known banned content")
    assert set(body["query"]["hashes"]) == set(IMAGE)


def test_an_unrelated_picture_matches_nothing(api, banked, jpeg):
    body = api.post(
        reverse("api:lookup"), {"file": _file(jpeg("coffee"))}, format="multipart"
    ).json()
    assert body["matches"] == [] or not body["verdict"]["blocked"]
    assert body["verdict"]["reason"] == "no_match"


def test_an_allow_list_entry_overrides_as_in_the_upload_path(api, banked):
    _, data = banked
    allow = services.create_bank("fine art", kind=Bank.Kind.ALLOW)
    services.add_images(allow, [("cat.jpg", data)])
    body = api.post(reverse("api:lookup"), {"hashes": reference_hex(data)}, format="json").json()
    assert {m["bank_kind"] for m in body["matches"]} == {"block", "allow"}
    verdict = body["verdict"]
    assert verdict["blocked"] and verdict["allowed"] and verdict["reason"] == "allow_listed"
    assert verdict["allow_bank"] == "fine art"


def test_the_clients_own_policy_decides_which_voters_count(api, banked):
    _, data = banked
    own = Policy.objects.create(pk=2)
    own.seed_defaults()
    own.voters.filter(algorithm="pdq").update(enabled=False)
    pdq = reference_hex(data)["pdq"]
    query = {"algorithm": "pdq", "hash": pdq}
    assert api.get(reverse("api:lookup"), query).json()["verdict"]["blocked"]  # the site's
    body = key_with("lookup", policy=own).get(reverse("api:lookup"), query).json()
    assert body["matches"] == [] and not body["verdict"]["blocked"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"algorithm": "pdq"}, "hash"),
        ({"hash": PDQ}, "algorithm"),
        ({"algorithm": "sha1", "hash": PDQ}, "hashes.sha1"),
        ({"algorithm": "pdq", "hash": PDQ[:-2]}, "hashes.pdq"),
        ({"algorithm": "pdq", "hash": "z" * 64}, "hashes.pdq"),
        ({"algorithm": "whash", "hash": "0" * 16}, "hashes.whash"),
    ],
)
def test_a_bad_hash_is_400_naming_the_field(api, params, field):
    answer = api.get(reverse("api:lookup"), params)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["fields"]


def test_bad_lookup_bodies_are_400_never_500(api):
    for body in (
        {"hashes": "pdq"},
        {"hashes": {}},
        {"hashes": {"pdq": 5}},
        {"algorithm": 5, "hash": PDQ},
        {"algorithm": "pdq", "hash": PDQ, "quality": {"pdq": 500}},
        {"algorithm": "pdq", "hash": PDQ, "quality": {"md5": 50}},
        {"algorithm": "pdq", "hash": PDQ, "quality": "high"},
        {"url": 5},
        {},
        [],
    ):
        answer = api.post(reverse("api:lookup"), body, format="json")
        assert answer.status_code == 400, (body, answer.content)
    assert (
        api.generic(
            "POST", reverse("api:lookup"), b"{", content_type="application/json"
        ).status_code
        == 400
    )


def test_a_low_quality_pdq_abstains(api, banked):
    _, data = banked
    pdq = reference_hex(data)["pdq"]
    body = api.post(
        reverse("api:lookup"),
        {"algorithm": "pdq", "hash": pdq, "quality": {"pdq": 20}},
        format="json",
    ).json()
    assert body["matches"] == [] and body["verdict"]["voters"] == 0


def _file(data: bytes, name: str = "picture.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")
