"""Quorum voting of the hash voters against banks, on constructed fingerprints.

Most tests here are about the vote's arithmetic and say it in counts ("3 of 5", "an N of M
quorum"): they give every voter one vote and a majority quorum (``one_vote_each``), the
policy before issue 9 §2, so they keep checking that arithmetic whatever the defaults are.
The default policy (aHash, dHash, pHash and PDQ weighing 2, phash_simple 1, a quorum of 4)
has tests of its own at the end, and the tests that do not depend on counts run under it.
"""

import itertools
import random

import pytest

from hashing import matcher, services
from hashing.algorithms import ALGORITHMS, names
from hashing.models import Bank, BankContent, BankEntry
from review.categories import DEFAULT_CATEGORIES
from review.outcomes import decide

VOTERS = names("image")

BITS = {name: ALGORITHMS[name].bits for name in VOTERS}

# The voters the default policy weighs 2 (phash_simple, the weak one, weighs 1).
STRONG = ("ahash", "dhash", "phash", "pdq")


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


def give_one_vote_each(policy) -> None:
    """Every voter weighs 1 and the quorum is a majority (0), in the policy's rows: the
    tests of the vote's arithmetic are written in counts of voters, which the default
    weights (2 for the strong voters, 1 for phash_simple, a quorum of 4) would change."""
    set_voters(policy, VOTERS, weight=1)
    policy.quorum = 0
    policy.save(update_fields=["quorum"])
    settings = {n: s for n, s in policy.voter_settings().items() if n in VOTERS}  # images'
    assert {s.weight for s in settings.values()} == {1} and len(settings) == len(VOTERS)


@pytest.fixture
def one_vote_each(policy):
    give_one_vote_each(policy)
    return policy


@pytest.mark.parametrize(
    "matching, blocked",
    [
        ((), False),
        (("ahash",), False),
        (("ahash", "pdq"), False),
        (("ahash", "dhash", "pdq"), True),
        (("phash_simple", "phash", "pdq", "dhash"), True),
        (VOTERS, True),
    ],
)
@pytest.mark.usefixtures("one_vote_each")
def test_voters_that_disagree_give_the_quorum_result(policy, reference, matching, blocked):
    hashes, content = reference
    within = at_threshold(policy)
    fp = make_fp(hashes, {name: within[name] for name in matching})
    result = matcher.vote(fp, policy)
    assert result["blocked"] is blocked
    assert result["votes"] == len(matching) and result["voters"] == 5 and result["quorum"] == 3
    assert result["content"] == (content.pk if matching else None)
    assert {n for n, v in result["per_voter"].items() if v["vote"]} == set(matching)


@pytest.mark.usefixtures("one_vote_each")
def test_a_voter_just_outside_its_threshold_does_not_vote(policy, reference):
    hashes, _ = reference
    t = at_threshold(policy)
    fp = make_fp(
        hashes,
        {
            "ahash": t["ahash"] + 1,
            "dhash": t["dhash"],
            "phash_simple": t["phash_simple"],
            "pdq": t["pdq"] + 1,
            "phash": t["phash"] + 1,
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
    phash_at = at_threshold(policy)["phash_simple"]
    fp = make_fp(hashes, {"ahash": 2, "dhash": 0, "phash_simple": phash_at, "pdq": 20})
    result = matcher.vote(fp, policy)
    entries = dict(BankEntry.objects.filter(content=content).values_list("algorithm", "pk"))
    assert result["per_voter"] == {
        "ahash": {"vote": True, "entry": entries["ahash"], "distance": 2, "mirrored": False},
        "dhash": {"vote": True, "entry": entries["dhash"], "distance": 0, "mirrored": False},
        "phash_simple": {
            "vote": True,
            "entry": entries["phash_simple"],
            "distance": phash_at,
            "mirrored": False,
        },
        "phash": {"vote": False, "entry": None, "distance": None, "mirrored": False},
        "pdq": {"vote": True, "entry": entries["pdq"], "distance": 20, "mirrored": False},
    }
    # Under the default weights: aHash 2 + dHash 2 + phash_simple 1 + PDQ 2.
    assert result["blocked"] and result["bank"] == "known bad" and result["votes"] == 7


@pytest.mark.parametrize("quorum, votes, blocked", [(4, 3, False), (4, 4, True), (2, 2, True)])
@pytest.mark.usefixtures("one_vote_each")
def test_an_n_of_m_quorum_comes_from_the_policy(policy, reference, quorum, votes, blocked):
    hashes, _ = reference
    policy.quorum = quorum
    fp = make_fp(hashes, {name: 0 for name in VOTERS[:votes]})
    result = matcher.vote(fp, policy)
    assert result["quorum"] == quorum and result["blocked"] is blocked


@pytest.mark.usefixtures("one_vote_each")
def test_voters_switched_off_neither_vote_nor_count(policy, reference):
    hashes, _ = reference
    set_voters(policy, ["phash_simple", "phash"], enabled=False)
    fp = make_fp(hashes, {"ahash": 0, "phash_simple": 0, "phash": 0, "dhash": 0})
    result = matcher.vote(fp, policy)
    assert result["voters"] == 3 and result["quorum"] == 2
    assert set(result["per_voter"]) == {"ahash", "dhash", "pdq"}
    assert result["votes"] == 2 and result["blocked"]


@pytest.mark.usefixtures("one_vote_each")
def test_thresholds_come_from_the_policy(policy, reference):
    hashes, _ = reference
    fp = make_fp(hashes, {"ahash": 6, "dhash": 6, "phash_simple": 6})
    assert matcher.vote(fp, policy)["blocked"]
    set_voters(policy, ["ahash", "dhash"], threshold=5)
    assert not matcher.vote(fp, policy)["blocked"]


@pytest.mark.usefixtures("one_vote_each")
def test_a_voters_weight_counts_its_vote_that_many_times(policy, reference):
    """From one vote each, PDQ weighing 3 of 7: with aHash it reaches the majority (4) that
    2 of 5 did not."""
    hashes, _ = reference
    fp = make_fp(hashes, {"ahash": 0, "pdq": 0})
    assert not matcher.vote(fp, policy)["blocked"]
    set_voters(policy, ["pdq"], weight=3)
    result = matcher.vote(fp, policy)
    assert (result["votes"], result["eligible"], result["quorum"]) == (4, 7, 4)
    assert result["blocked"]


def test_votes_must_agree_on_one_picture(policy, block_bank):
    """Three strong voters each near a different reference picture are not a match, though
    their weight (2 + 2 + 2 under the defaults) on one picture would be well past 4."""
    refs = [random_hashes(seed) for seed in (11, 12, 13)]
    for i, hashes in enumerate(refs):
        add_content(block_bank, hashes, key=f"pic{i}")
    fp = make_fp(refs[0], {"ahash": 0})
    fp["dhash"] = refs[1]["dhash"]
    fp["phash"] = refs[2]["phash"]
    result = matcher.vote(fp, policy)
    assert not result["blocked"] and (result["votes"], result["quorum"]) == (2, 4)
    assert sum(v["entry"] is not None for v in result["per_voter"].values()) == 3
    together = matcher.vote(make_fp(refs[0], {"ahash": 0, "dhash": 0, "phash": 0}), policy)
    assert together["blocked"] and together["votes"] == 6


def test_a_pdq_only_hash_list_blocks_on_its_one_voter(policy, block_bank):
    """ThreatExchange / HMA lists carry PDQ only: the one voter that can vote decides."""
    pdq = random_hashes(5)["pdq"]
    services.import_hash_list(block_bank, [f"pdq,{ALGORITHMS['pdq'].to_hex(pdq)},shared list"])
    fp = make_fp(random_hashes(6), {})
    fp["pdq"] = near(pdq, 25)
    result = matcher.vote(fp, policy)
    # Under the defaults PDQ weighs 2 and is all the weight able to vote on the row, so its
    # vote is the quorum (4 capped at 2), judged by the strict rule (PDQ within 31).
    assert result["blocked"] and result["strict"] and result["votes"] == 2
    assert result["eligible"] == 2 and result["quorum"] == 2 and result["voters"] == 9


def test_a_featureless_picture_makes_the_pdq_voter_abstain(policy, reference):
    """dHash and PDQ agreeing block by default; with PDQ's quality below 50 only dHash's 2
    of the 4 needed is left (PDQ neither votes nor counts among the voters)."""
    hashes, _ = reference
    detailed = matcher.vote(make_fp(hashes, {"dhash": 0, "pdq": 0}, quality=100), policy)
    assert detailed["blocked"] and detailed["votes"] == 4 and detailed["voters"] == 9
    fp = make_fp(hashes, {"dhash": 0, "pdq": 0}, quality=20)
    result = matcher.vote(fp, policy)
    assert result["voters"] == 7 and "pdq" not in result["per_voter"]
    assert (result["votes"], result["eligible"], result["quorum"]) == (2, 7, 4)
    assert not result["blocked"] and not result["strict"]


def test_a_mirrored_copy_matches_through_the_mirror_hashes(policy, reference):
    hashes, _ = reference
    fp = make_fp(hashes, {})
    fp["mirror"] = {name: near(hashes[name], 1) for name in VOTERS}
    result = matcher.vote(fp, policy)
    assert result["blocked"] and result["votes"] == 9  # all five voters: 2 + 2 + 1 + 2 + 2
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
    assert result["allow_bank"] == "benign look-alikes" and result["allow_votes"] == 9
    outcome = decide(scores={}, rules=DEFAULT_CATEGORIES, bank=result)
    assert outcome.outcome == "pass" and outcome.reason == "allow_listed"


def test_an_allow_entry_needs_its_own_quorum(policy, reference):
    hashes, _ = reference
    allow = services.create_bank("benign", kind=Bank.Kind.ALLOW)
    add_content(allow, {"phash": hashes["phash"]}, key="only-phash")
    add_content(allow, random_hashes(99), key="other")
    fp = make_fp(hashes, {name: 0 for name in VOTERS})
    result = matcher.vote(fp, policy)
    # The single-hash allow content has one eligible voter (pHash, weight 2 by default), so
    # its vote is its quorum (under the strict rule, as for block contents: phash within 6).
    assert result["allowed"] and result["allow_votes"] == 2
    fp = make_fp(hashes, {"dhash": 0, "phash_simple": 0, "ahash": 0})
    assert not matcher.vote(fp, policy)["allowed"]


def test_disabled_entries_and_inactive_banks_take_no_part(policy, reference, block_bank):
    hashes, content = reference
    fp = make_fp(hashes, {"ahash": 0, "dhash": 0, "phash_simple": 0})
    assert matcher.vote(fp, policy)["blocked"]
    services.set_entries_enabled(BankEntry.objects.filter(algorithm="ahash"), False)
    result = matcher.vote(fp, policy)
    # Four voters (weight 7) can still vote on the picture: dHash and phash_simple give 3
    # of the 4 needed.
    assert not result["blocked"] and result["eligible"] == 7 and result["votes"] == 3
    services.set_contents_enabled([content], True)
    assert matcher.vote(fp, policy)["blocked"]
    block_bank.active = False
    services.save_bank(block_bank)
    assert not matcher.vote(fp, policy)["blocked"]


def test_with_no_banks_the_vote_is_a_complete_clean_answer(policy):
    result = matcher.vote(make_fp(random_hashes(3), {}), policy)
    assert result["blocked"] is False and result["allowed"] is False
    # The default weights: 9 from the five voters, of which 4 block.
    assert result["votes"] == 0 and result["voters"] == 9 and result["quorum"] == 4
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


# -- the default policy (issue 9 §2, measured by bench/detection.py) -----------------------


def test_the_default_policy_weighs_the_strong_voters_2_phash_simple_1_and_needs_4(policy):
    settings = policy.voter_settings().items()
    weights = {name: setting.weight for name, setting in settings if name in VOTERS}
    assert weights == {"ahash": 2, "dhash": 2, "phash": 2, "pdq": 2, "phash_simple": 1}
    assert policy.quorum == 4


@pytest.mark.parametrize("pair", list(itertools.combinations(STRONG, 2)))
def test_by_default_any_two_strong_voters_agreeing_block(policy, reference, pair):
    hashes, content = reference
    within = at_threshold(policy)
    result = matcher.vote(make_fp(hashes, {name: within[name] for name in pair}), policy)
    assert result["blocked"] and result["content"] == content.pk and not result["strict"]
    assert (result["votes"], result["eligible"], result["quorum"]) == (4, 9, 4)
    assert result["voters"] == 9 and result["full_quorum"] == 4
    assert {n for n, v in result["per_voter"].items() if v["vote"]} == set(pair)


@pytest.mark.parametrize("strong", STRONG)
def test_by_default_phash_simple_and_one_strong_voter_do_not_block(policy, reference, strong):
    hashes, content = reference
    within = at_threshold(policy)
    fp = make_fp(hashes, {"phash_simple": within["phash_simple"], strong: within[strong]})
    result = matcher.vote(fp, policy)
    assert not result["blocked"] and result["content"] == content.pk and not result["strict"]
    assert (result["votes"], result["eligible"], result["quorum"]) == (3, 9, 4)
    assert {n for n, v in result["per_voter"].items() if v["vote"]} == {"phash_simple", strong}


@pytest.mark.parametrize(
    "matching, votes, blocked",
    [
        ((), 0, False),
        (("phash_simple",), 1, False),
        (("pdq",), 2, False),
        (("phash_simple", "ahash", "dhash"), 5, True),
        (("ahash", "dhash", "phash"), 6, True),
        (("phash_simple", "phash", "pdq", "dhash"), 7, True),
        (VOTERS, 9, True),
    ],
)
def test_the_default_weighted_tally(policy, reference, matching, votes, blocked):
    """The result's votes, eligible and quorum are weights: 9 able to vote on a full
    reference, 4 of it needed, each voter's vote counting its weight."""
    hashes, content = reference
    within = at_threshold(policy)
    result = matcher.vote(make_fp(hashes, {name: within[name] for name in matching}), policy)
    assert result["blocked"] is blocked
    assert (result["votes"], result["eligible"], result["quorum"]) == (votes, 9, 4)
    assert result["voters"] == 9 and result["content"] == (content.pk if matching else None)
