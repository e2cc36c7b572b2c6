"""Quorum voting of the hash voters against banks, on constructed fingerprints."""

import random

import pytest

from hashing import matcher, services
from hashing.algorithms import ALGORITHMS, names
from hashing.models import Bank, BankContent, BankEntry
from review.categories import DEFAULT_CATEGORIES
from review.outcomes import decide

VOTERS = names("image")

BITS = {name: ALGORITHMS[name].bits for name in VOTERS}


def random_hashes(seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    return {name: rng.getrandbits(BITS[name]) for name in VOTERS}


def near(value: int, distance: int) -> int:
    """A hash exactly `distance` bits away."""
    return value ^ ((1 << distance) - 1)


def far(value: int, name: str) -> int:
    return value ^ ((1 << BITS[name]) - 1)


def make_fp(reference: dict[str, int], distances: dict[str, int], quality: int = 100) -> dict:
    """A query fingerprint: each voter at the given distance (None: all bits differ); the
    mirror hashes are random, so they match nothing."""
    fp = {}
    for name in VOTERS:
        d = distances.get(name)
        fp[name] = far(reference[name], name) if d is None else near(reference[name], d)
    fp["quality"] = {"pdq": quality}
    fp["mirror"] = random_hashes(424242)
    return fp


def add_content(bank, hashes: dict[str, int], key: str = "pic") -> BankContent:
    lines = ["hash_type,hash_value,note,content"] + [
        f"{name},{ALGORITHMS[name].to_hex(value)},test,{key}" for name, value in hashes.items()
    ]
    services.import_hash_list(bank, lines)
    return BankContent.objects.filter(bank=bank).order_by("-pk").first()


@pytest.fixture
def block_bank(db):
    return services.create_bank("known bad", kind=Bank.Kind.BLOCK)


@pytest.fixture
def reference(block_bank):
    hashes = random_hashes(1)
    return hashes, add_content(block_bank, hashes)


def at_threshold(policy) -> dict:
    """Each voter's distance exactly at its policy threshold: the farthest that still votes."""
    return {name: setting.threshold for name, setting in policy.voter_settings().items()}


def set_voters(policy, algorithms, **fields):
    """Edit voter rows as an admin would."""
    assert policy.voters.filter(algorithm__in=algorithms).update(**fields) == len(algorithms)


@pytest.mark.parametrize(
    "matching, blocked",
    [
        ((), False),
        (("ahash",), False),
        (("ahash", "pdq"), False),
        (("ahash", "dhash", "pdq"), True),
        (("phash", "mhash", "pdq", "dhash"), True),
        (VOTERS, True),
    ],
)
def test_voters_that_disagree_give_the_quorum_result(policy, reference, matching, blocked):
    hashes, content = reference
    within = at_threshold(policy)
    fp = make_fp(hashes, {name: within[name] for name in matching})
    result = matcher.vote(fp, policy)
    assert result["blocked"] is blocked
    assert result["votes"] == len(matching) and result["voters"] == 5 and result["quorum"] == 3
    assert result["content"] == (content.pk if matching else None)
    assert {n for n, v in result["per_voter"].items() if v["vote"]} == set(matching)


def test_a_voter_just_outside_its_threshold_does_not_vote(policy, reference):
    hashes, _ = reference
    t = at_threshold(policy)
    fp = make_fp(
        hashes,
        {
            "ahash": t["ahash"] + 1,
            "dhash": t["dhash"],
            "phash": t["phash"],
            "pdq": t["pdq"] + 1,
            "mhash": t["mhash"] + 1,
        },
    )
    result = matcher.vote(fp, policy)
    assert result["votes"] == 2 and not result["blocked"]
    assert result["per_voter"]["ahash"] == {
        "vote": False,
        "entry": None,
        "distance": None,
        "mirrored": False,
    }


def test_the_result_shows_each_voters_vote_nearest_entry_and_distance(policy, reference):
    hashes, content = reference
    phash_at = at_threshold(policy)["phash"]
    fp = make_fp(hashes, {"ahash": 2, "dhash": 0, "phash": phash_at, "pdq": 20})
    result = matcher.vote(fp, policy)
    entries = dict(BankEntry.objects.filter(content=content).values_list("algorithm", "pk"))
    assert result["per_voter"] == {
        "ahash": {"vote": True, "entry": entries["ahash"], "distance": 2, "mirrored": False},
        "dhash": {"vote": True, "entry": entries["dhash"], "distance": 0, "mirrored": False},
        "phash": {"vote": True, "entry": entries["phash"], "distance": phash_at, "mirrored": False},
        "mhash": {"vote": False, "entry": None, "distance": None, "mirrored": False},
        "pdq": {"vote": True, "entry": entries["pdq"], "distance": 20, "mirrored": False},
    }
    assert result["blocked"] and result["bank"] == "known bad" and result["votes"] == 4


@pytest.mark.parametrize("quorum, votes, blocked", [(4, 3, False), (4, 4, True), (2, 2, True)])
def test_an_n_of_m_quorum_comes_from_the_policy(policy, reference, quorum, votes, blocked):
    hashes, _ = reference
    policy.quorum = quorum
    fp = make_fp(hashes, {name: 0 for name in VOTERS[:votes]})
    result = matcher.vote(fp, policy)
    assert result["quorum"] == quorum and result["blocked"] is blocked


def test_voters_switched_off_neither_vote_nor_count(policy, reference):
    hashes, _ = reference
    set_voters(policy, ["phash", "mhash"], enabled=False)
    fp = make_fp(hashes, {"ahash": 0, "phash": 0, "mhash": 0, "dhash": 0})
    result = matcher.vote(fp, policy)
    assert result["voters"] == 3 and result["quorum"] == 2
    assert set(result["per_voter"]) == {"ahash", "dhash", "pdq"}
    assert result["votes"] == 2 and result["blocked"]


def test_thresholds_come_from_the_policy(policy, reference):
    hashes, _ = reference
    fp = make_fp(hashes, {"ahash": 6, "dhash": 6, "phash": 6})
    assert matcher.vote(fp, policy)["blocked"]
    set_voters(policy, ["ahash", "dhash"], threshold=5)
    assert not matcher.vote(fp, policy)["blocked"]


def test_a_voters_weight_counts_its_vote_that_many_times(policy, reference):
    """PDQ weighing 3 of 7: with aHash it reaches the majority (4) that 2 of 5 did not."""
    hashes, _ = reference
    fp = make_fp(hashes, {"ahash": 0, "pdq": 0})
    assert not matcher.vote(fp, policy)["blocked"]
    set_voters(policy, ["pdq"], weight=3)
    result = matcher.vote(fp, policy)
    assert (result["votes"], result["eligible"], result["quorum"]) == (4, 7, 4)
    assert result["blocked"]


def test_votes_must_agree_on_one_picture(policy, block_bank):
    """Three voters each near a different reference picture are not a match."""
    refs = [random_hashes(seed) for seed in (11, 12, 13)]
    for i, hashes in enumerate(refs):
        add_content(block_bank, hashes, key=f"pic{i}")
    fp = make_fp(refs[0], {"ahash": 0})
    fp["dhash"] = refs[1]["dhash"]
    fp["phash"] = refs[2]["phash"]
    result = matcher.vote(fp, policy)
    assert not result["blocked"] and result["votes"] == 1
    assert sum(v["entry"] is not None for v in result["per_voter"].values()) == 3


def test_a_pdq_only_hash_list_blocks_on_its_one_voter(policy, block_bank):
    """ThreatExchange / HMA lists carry PDQ only: the one voter that can vote decides."""
    pdq = random_hashes(5)["pdq"]
    services.import_hash_list(block_bank, [f"pdq,{ALGORITHMS['pdq'].to_hex(pdq)},shared list"])
    fp = make_fp(random_hashes(6), {})
    fp["pdq"] = near(pdq, 25)
    result = matcher.vote(fp, policy)
    assert result["blocked"] and result["votes"] == 1
    assert result["eligible"] == 1 and result["quorum"] == 1 and result["voters"] == 5


def test_a_featureless_picture_makes_the_pdq_voter_abstain(policy, reference):
    hashes, _ = reference
    fp = make_fp(hashes, {"ahash": 0, "dhash": 0, "pdq": 0}, quality=20)
    result = matcher.vote(fp, policy)
    assert result["voters"] == 4 and "pdq" not in result["per_voter"]
    assert result["votes"] == 2 and not result["blocked"]


def test_a_mirrored_copy_matches_through_the_mirror_hashes(policy, reference):
    hashes, _ = reference
    fp = make_fp(hashes, {})
    fp["mirror"] = {name: near(hashes[name], 1) for name in VOTERS}
    result = matcher.vote(fp, policy)
    assert result["blocked"] and result["votes"] == 5
    assert all(v["mirrored"] and v["distance"] == 1 for v in result["per_voter"].values())
    policy.mirror_aware = False
    assert not matcher.vote(fp, policy)["blocked"]


def test_an_allow_entry_overrides_a_block_match(policy, reference):
    hashes, _ = reference
    allow = services.create_bank("benign look-alikes", kind=Bank.Kind.ALLOW)
    fp = make_fp(hashes, {name: 0 for name in VOTERS})
    assert not matcher.vote(fp, policy)["allowed"]
    add_content(allow, hashes)
    result = matcher.vote(fp, policy)
    assert result["blocked"] and result["allowed"]
    assert result["allow_bank"] == "benign look-alikes" and result["allow_votes"] == 5
    outcome = decide(scores={}, rules=DEFAULT_CATEGORIES, bank=result)
    assert outcome.outcome == "pass" and outcome.reason == "allow_listed"


def test_an_allow_entry_needs_its_own_quorum(policy, reference):
    hashes, _ = reference
    allow = services.create_bank("benign", kind=Bank.Kind.ALLOW)
    add_content(allow, {"ahash": hashes["ahash"]}, key="only-ahash")
    add_content(allow, random_hashes(99), key="other")
    fp = make_fp(hashes, {name: 0 for name in VOTERS})
    result = matcher.vote(fp, policy)
    # The single-hash allow content has one eligible voter, so its one vote is its quorum.
    assert result["allowed"] and result["allow_votes"] == 1
    fp = make_fp(hashes, {"dhash": 0, "phash": 0, "mhash": 0})
    assert not matcher.vote(fp, policy)["allowed"]


def test_disabled_entries_and_inactive_banks_take_no_part(policy, reference, block_bank):
    hashes, content = reference
    fp = make_fp(hashes, {"ahash": 0, "dhash": 0, "phash": 0})
    assert matcher.vote(fp, policy)["blocked"]
    services.set_entries_enabled(BankEntry.objects.filter(algorithm="ahash"), False)
    result = matcher.vote(fp, policy)
    # Four voters can still vote on the picture: 2 of them is not a majority.
    assert not result["blocked"] and result["eligible"] == 4 and result["votes"] == 2
    services.set_contents_enabled([content], True)
    assert matcher.vote(fp, policy)["blocked"]
    block_bank.active = False
    services.save_bank(block_bank)
    assert not matcher.vote(fp, policy)["blocked"]


def test_with_no_banks_the_vote_is_a_complete_clean_answer(policy):
    result = matcher.vote(make_fp(random_hashes(3), {}), policy)
    assert result["blocked"] is False and result["allowed"] is False
    assert result["votes"] == 0 and result["voters"] == 5 and result["quorum"] == 3
    assert result["bank"] == "" and result["content"] is None
    assert all(not v["vote"] for v in result["per_voter"].values())


def test_the_matcher_is_rebuilt_only_when_banks_change(policy, reference, block_bank):
    hashes, _ = reference
    first = matcher.matcher.state()
    matcher.vote(make_fp(hashes, {}), policy)
    assert matcher.matcher.state() is first
    add_content(block_bank, random_hashes(7), key="another")
    second = matcher.matcher.state()
    assert second is not first and len(second) == len(first) + 5


def test_a_change_rolled_back_is_not_seen(policy, reference, block_bank):
    from django.db import transaction

    hashes, _ = reference
    fp = make_fp(hashes, {name: 0 for name in VOTERS})
    before = matcher.matcher.state()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.set_entries_enabled(BankEntry.objects.all(), False)
        raise RuntimeError
    assert matcher.matcher.state() is before and matcher.vote(fp, policy)["blocked"]
