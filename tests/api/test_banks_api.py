"""Bank curation through the API: list, add (picture or hashes, with a note and the client's
id), disable and remove, CSV import (with progress) and export (streamed); every change in
the bank audit under the client's name, and live for matching at every process's next vote."""

import json
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import reverse
from rest_framework.test import APIClient

from hashing import matcher, services
from hashing.algorithms import names
from hashing.matcher import BankMatcher
from hashing.models import Bank, BankChange, BankContent, BankEntry, BankJournal, BankVersion
from review.models import Policy
from tests.api.conftest import key_with

IMAGE = names("image")  # the algorithms a picture is hashed with
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PHASH = "c3d1a4b8e0f07a19"


@pytest.fixture
def bank(db):
    return services.create_bank("known bad")


def url(name, bank, **kw):
    return reverse(f"api:{name}", kwargs={"bank_id": bank.pk, **kw})


def lookup(api, algorithm, value):
    return api.get(reverse("api:lookup"), {"algorithm": algorithm, "hash": value}).json()


def csv_file(text: str, name: str = "list.csv"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def random_pdq(i: int) -> str:
    return format((0x9E3779B97F4A7C15 * (i + 1) * 0x1F) % (1 << 256) ^ (i << 128), "064x")


# -- banks -------------------------------------------------------------------------------


def test_banks_are_listed_with_their_counts(api, bank):
    services.add_hashes(bank, {"pdq": PDQ, "phash": PHASH})
    services.create_bank("fine art", kind=Bank.Kind.ALLOW)
    body = api.get(reverse("api:banks")).json()
    by_name = {b["name"]: b for b in body["results"]}
    assert by_name["known bad"]["entries"] == 2 and by_name["fine art"]["kind"] == "allow"
    assert api.get(url("bank", bank)).json()["entries"] == 2
    assert api.get(reverse("api:bank", kwargs={"bank_id": 9999})).status_code == 404


def test_reading_needs_banks_read_and_changing_banks_write(bank):
    reader, writer = key_with("banks:read"), key_with("banks:write")
    assert reader.get(reverse("api:banks")).status_code == 200
    assert writer.get(reverse("api:banks")).status_code == 403
    add = {"hashes": {"pdq": PDQ}}
    assert reader.post(url("bank-contents", bank), add, format="json").status_code == 403
    assert writer.post(url("bank-contents", bank), add, format="json").status_code == 201
    assert reader.get(url("bank-export", bank)).status_code == 200
    assert (
        reader.post(url("bank-import", bank), {"file": csv_file("pdq," + PDQ)}).status_code == 403
    )
    assert BankEntry.objects.count() == 1


# -- adding content ----------------------------------------------------------------------


def test_hashes_with_a_note_and_external_id_are_added_audited_and_found(api, bank, api_client_row):
    add = {"hashes": {"pdq": PDQ, "mhash": PHASH}, "note": "case 17", "external_id": "their-17"}
    answer = api.post(url("bank-contents", bank), add, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    content = body["content"]
    assert body["created"] and content["external_id"] == "their-17" and content["note"] == "case 17"
    assert {e["algorithm"]: e["value"] for e in content["entries"]} == {"pdq": PDQ, "phash": PHASH}
    assert "reference" in body["votes_as"]
    change = BankChange.objects.get(action=BankChange.Action.HASHES_ADDED)
    assert change.actor == api_client_row.user and change.content_id == content["id"]
    (match,) = lookup(api, "pdq", PDQ)["matches"]
    assert match["external_id"] == "their-17" and match["content_id"] == content["id"]
    again = api.post(url("bank-contents", bank), add, format="json")
    assert again.status_code == 200 and not again.json()["created"]
    assert again.json()["content"]["id"] == content["id"] and BankContent.objects.count() == 1


def test_a_reference_picture_is_hashed_into_the_bank(api, bank, jpeg, api_client_row):
    data = jpeg("chelsea")
    picture = SimpleUploadedFile("cat.jpg", data, content_type="image/jpeg")
    answer = api.post(
        url("bank-contents", bank),
        {"file": picture, "external_id": "cat-1", "note": "n"},
        format="multipart",
    )
    assert answer.status_code == 201, answer.content
    content = answer.json()["content"]
    assert {e["algorithm"] for e in content["entries"]} == set(IMAGE)
    assert content["rotated_versions"] >= 1 and content["sha256"]
    assert "vote weight 4 of 9" in answer.json()["votes_as"]
    assert set(BankContent.objects.values_list("external_id", flat=True)) == {"cat-1"}
    assert BankChange.objects.get(action="images_added").actor == api_client_row.user
    picture.seek(0)
    again = api.post(url("bank-contents", bank), {"file": picture}, format="multipart")
    assert again.status_code == 200 and again.json()["content"]["id"] == content["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"hashes": {"pdq": PDQ[:10]}},
        {"hashes": {"sha1": PDQ}},
        {"hashes": {"pdq": PDQ, "pdqhash": PDQ}},
        {"hashes": {}},
        {"hashes": "pdq"},
        {"hashes": {"pdq": PDQ}, "external_id": "x" * 300},
        {"note": "nothing to add"},
        {"url": "http://169.254.169.254/latest/"},
    ],
)
def test_bad_content_is_400_and_adds_nothing(api, bank, body):
    answer = api.post(url("bank-contents", bank), body, format="json")
    assert answer.status_code == 400, answer.content
    assert {"code", "detail"} <= set(answer.json()) and BankEntry.objects.count() == 0


def test_many_contents_are_added_in_one_request_all_or_none(api, bank, api_client_row):
    items = [
        {"hashes": {"pdq": random_pdq(i)}, "external_id": f"e{i}", "note": f"n{i}"}
        for i in range(20)
    ]
    items.append(dict(items[3]))  # the same picture twice: one content
    answer = api.post(url("bank-contents-batch", bank), {"contents": items}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["created"] == 20 and len(body["results"]) == 21
    assert body["results"][3]["content_id"] == body["results"][20]["content_id"]
    assert [r["external_id"] for r in body["results"][:3]] == ["e0", "e1", "e2"]
    assert set(body["results"][0]["entries"]) == {"pdq"}
    (votes,) = body["votes"]
    assert votes["contents"] == 20 and "one hash" in votes["sentence"]
    changes = BankChange.objects.filter(action="hashes_added")
    assert changes.count() == 20 and {c.actor for c in changes} == {api_client_row.user}
    assert lookup(api, "pdq", random_pdq(7))["matches"][0]["external_id"] == "e7"
    again = api.post(url("bank-contents-batch", bank), {"contents": items[:2]}, format="json")
    assert again.status_code == 200 and again.json()["created"] == 0
    bad = items[:2] + [{"hashes": {"pdq": "nope"}}]
    refused = api.post(
        url("bank-contents-batch", bank), {"contents": bad + [{"hashes": {}}]}, format="json"
    )
    assert refused.status_code == 400 and "contents.2.pdq" in refused.json()["fields"]
    assert BankContent.objects.count() == 20
    too_many = {"contents": [{"hashes": {"pdq": PDQ}}] * 1001}
    assert api.post(url("bank-contents-batch", bank), too_many, format="json").status_code == 400


def test_a_picture_that_is_not_one_is_400(api, bank):
    junk = SimpleUploadedFile("x.jpg", b"<html>", content_type="image/jpeg")
    answer = api.post(url("bank-contents", bank), {"file": junk}, format="multipart")
    assert answer.status_code == 400 and answer.json()["code"] == "bank_refused"


def test_contents_are_paged_and_found_by_external_id(api, bank):
    for i in range(5):
        services.add_hashes(bank, {"pdq": random_pdq(i)}, external_id=f"e{i % 2}")
    first = api.get(url("bank-contents", bank), {"limit": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = api.get(first["next"]).json()
    assert second["results"][0]["id"] < first["results"][-1]["id"]
    found = api.get(url("bank-contents", bank), {"external_id": "e1"}).json()["results"]
    assert {c["external_id"] for c in found} == {"e1"} and len(found) == 2
    assert api.get(url("bank-contents", bank), {"limit": "lots"}).status_code == 400


# -- disabling and removing --------------------------------------------------------------


def test_disabling_removing_and_enabling_a_content_take_effect_at_once(api, bank, api_client_row):
    content, _ = services.add_hashes(bank, {"pdq": PDQ, "phash": PHASH})
    assert lookup(api, "pdq", PDQ)["verdict"]["blocked"]
    off = api.patch(
        url("bank-content", bank, content_id=content.pk),
        {"enabled": False, "reason": "false positive"},
        format="json",
    )
    assert off.status_code == 200 and off.json()["changed"] == 2
    assert not off.json()["content"]["enabled"]
    assert lookup(api, "pdq", PDQ)["matches"] == []
    on = api.patch(
        url("bank-content", bank, content_id=content.pk), {"enabled": True}, format="json"
    )
    assert on.json()["changed"] == 2 and lookup(api, "pdq", PDQ)["verdict"]["blocked"]
    gone = api.delete(url("bank-content", bank, content_id=content.pk))
    assert gone.status_code == 200 and lookup(api, "pdq", PDQ)["matches"] == []
    changes = BankChange.objects.filter(action="entry_disabled")
    assert {c.actor for c in changes} == {api_client_row.user}
    assert {c.detail.get("reason") for c in changes} == {
        "false positive",
        "removed through the API",
    }
    assert BankEntry.objects.count() == 2  # kept on record
    again = api.post(
        url("bank-contents", bank), {"hashes": {"pdq": PDQ, "phash": PHASH}}, format="json"
    )
    assert again.status_code == 200 and again.json()["content"]["enabled"]
    assert lookup(api, "pdq", PDQ)["verdict"]["blocked"]  # adding it again made it live


def test_one_entry_can_be_disabled_and_the_vote_follows(api, bank):
    content, _ = services.add_hashes(bank, {"pdq": PDQ, "phash": PHASH})
    pdq = content.entries.get(algorithm="pdq")
    answer = api.delete(url("bank-entry", bank, entry_id=pdq.pk))
    assert answer.status_code == 200 and answer.json()["entry"]["enabled"] is False
    assert lookup(api, "pdq", PDQ)["matches"] == []
    assert lookup(api, "phash", PHASH)["matches"][0]["entry_id"] != pdq.pk
    again = api.delete(url("bank-entry", bank, entry_id=pdq.pk))
    assert again.json()["changed"] == 0


def test_another_banks_content_or_entry_is_404(api, bank):
    other = services.create_bank("other")
    content, _ = services.add_hashes(other, {"pdq": PDQ})
    entry = content.entries.get()
    assert api.get(url("bank-content", bank, content_id=content.pk)).status_code == 404
    assert api.delete(url("bank-entry", bank, entry_id=entry.pk)).status_code == 404
    assert (
        api.patch(
            url("bank-content", other, content_id=content.pk), {"enabled": "maybe"}, format="json"
        ).status_code
        == 400
    )
    assert BankEntry.objects.get().enabled


# -- CSV import and export ----------------------------------------------------------------


def test_a_csv_list_is_imported_with_its_report_and_audited(api, bank, api_client_row):
    text = "hash_type,hash_value,note,content\n" + "\n".join(
        f"pdq,{random_pdq(i)},row {i},c{i}" for i in range(50)
    )
    answer = api.post(url("bank-import", bank), {"file": csv_file(text)}, format="multipart")
    assert answer.status_code == 201, answer.content
    report = answer.json()
    assert report["added_entries"] == 50 and report["rows"] == 50 and report["skipped"] == 0
    assert report["summary"].startswith("Imported 50 hashes")
    change = BankChange.objects.get(action="hashes_imported")
    assert change.actor == api_client_row.user and "API: partner" in change.detail["file"]
    assert lookup(api, "pdq", random_pdq(7))["matches"][0]["note"] == "row 7"
    again = api.post(url("bank-import", bank), text, content_type="text/csv")
    assert again.status_code == 201 and again.json()["skipped"] == 50


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("pdq,abc", "line 1"),
        ("whash,0000000000000000", "does not compute"),
        ("pdq," + "a" * 200_000, "not CSV"),
    ],
)
def test_a_bad_list_is_400_naming_what_is_wrong_and_imports_nothing(api, bank, body, words):
    answer = api.post(url("bank-import", bank), body, content_type="text/csv")
    assert answer.status_code == 400, answer.content
    assert words in answer.json()["detail"] and BankEntry.objects.count() == 0


def test_a_list_not_in_utf8_or_missing_is_400(api, bank):
    answer = api.post(url("bank-import", bank), b"pdq,\xff\xfe", content_type="text/csv")
    assert answer.status_code == 400 and "UTF-8" in answer.json()["detail"]
    assert api.post(url("bank-import", bank), {}, format="multipart").status_code == 400


def test_the_export_streams_the_import_format_and_is_audited(api, bank, api_client_row):
    content, _ = services.add_hashes(bank, {"pdq": PDQ, "phash": PHASH}, note="a")
    services.add_hashes(bank, {"pdq": random_pdq(1)}, note="b")
    services.set_contents_enabled([content], False)
    answer = api.get(url("bank-export", bank), HTTP_ACCEPT="text/csv")
    assert answer.status_code == 200 and answer.streaming
    assert answer["Content-Type"].startswith("text/csv")
    text = b"".join(answer.streaming_content).decode()
    assert text.splitlines()[0] == "hash_type,hash_value,note,content,external_id"
    assert len(text.splitlines()) == 2 and random_pdq(1) in text
    full = b"".join(
        api.get(url("bank-export", bank), {"include_disabled": "true"}).streaming_content
    )
    assert len(full.decode().splitlines()) == 4
    exports = BankChange.objects.filter(action="exported")
    assert [c.detail["entries"] for c in exports.order_by("pk")] == [1, 3]
    assert {c.actor for c in exports} == {api_client_row.user}
    # The export imports again as it is.
    other = services.create_bank("copy")
    again = api.post(url("bank-import", other), full.decode(), content_type="text/csv")
    assert again.json()["added_entries"] == 3 and again.json()["added_contents"] == 2


def test_external_ids_go_out_with_the_export_and_come_back_with_the_import(api, bank):
    picture = api.post(
        url("bank-contents", bank),
        {"hashes": {"pdq": PDQ, "phash": PHASH}, "external_id": "their-17", "note": "a"},
        format="json",
    )
    assert picture.status_code == 201, picture.content
    services.add_hashes(bank, {"pdq": random_pdq(1)}, note="no id of theirs")
    text = b"".join(api.get(url("bank-export", bank)).streaming_content).decode()
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert sorted(row[4] for row in rows) == ["", "their-17", "their-17"]
    other = services.create_bank("copy")
    again = api.post(url("bank-import", other), text, content_type="text/csv")
    assert again.status_code == 201 and again.json()["added_contents"] == 2
    found = api.get(url("bank-contents", other), {"external_id": "their-17"}).json()["results"]
    assert len(found) == 1 and {e["algorithm"] for e in found[0]["entries"]} == {"pdq", "phash"}
    assert lookup(api, "pdq", PDQ)["matches"][0]["external_id"] == "their-17"
    assert BankContent.objects.filter(bank=other, external_id="").count() == 1
    # One content's rows name one id: two different ones are refused, naming the line.
    clash = f"pdq,{random_pdq(2)},,c1,x\nphash,{PHASH},,c1,y\n"
    refused = api.post(url("bank-import", other), clash, content_type="text/csv")
    assert refused.status_code == 400 and "line 2" in refused.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_an_import_with_progress_streams_json_lines(api_key):
    bank = services.create_bank("big")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    text = "\n".join(f"pdq,{random_pdq(i)}" for i in range(4500))
    answer = api.post(
        url("bank-import", bank) + "?progress=true", {"file": csv_file(text)}, format="multipart"
    )
    assert answer.status_code == 200 and answer["Content-Type"] == "application/x-ndjson"
    events = [json.loads(line) for line in b"".join(answer.streaming_content).splitlines()]
    assert [e.get("done") for e in events[:-1]] == [2000, 4000, 4500]
    assert events[-1]["event"] == "done" and events[-1]["report"]["added_entries"] == 4500
    assert BankEntry.objects.filter(bank=bank).count() == 4500
    bad = api.post(url("bank-import", bank) + "?progress=true", "pdq,nope", content_type="text/csv")
    assert bad.status_code == 400 and bad.json()["code"] == "bank_refused"


# -- every process sees a change at its next vote -------------------------------------------


class OtherProcess:
    """A matcher of its own in a thread of its own (its own database connection), as
    another web or worker process has."""

    def __init__(self):
        self.matcher = BankMatcher()
        self.rules = Policy.current().voting_rules()

    def run(self, fn):
        out = {}

        def work():
            try:
                out["value"] = fn()
            finally:
                connections.close_all()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(10)
        return out["value"]

    def blocked(self, fp) -> tuple[bool, float]:
        def vote():
            started = time.perf_counter()
            saved = matcher.matcher
            matcher.matcher = self.matcher  # the vote reads the module's matcher
            try:
                return matcher.vote(fp, self.rules)["blocked"], time.perf_counter() - started
            finally:
                matcher.matcher = saved

        return self.run(vote)


@pytest.mark.django_db(transaction=True)
def test_a_new_or_disabled_entry_is_live_in_another_process_within_a_second(api_key):
    bank = services.create_bank("live")
    for i in range(300):
        services.add_hashes(bank, {"pdq": random_pdq(i)})
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    other = OtherProcess()
    fp = {"pdq": int(PDQ, 16), **{n: 0 for n in IMAGE if n != "pdq"}}
    fp["quality"] = {n: 0 for n in IMAGE if n != "pdq"}
    assert other.blocked(fp)[0] is False  # built now, without it
    built = other.matcher._state
    added = api.post(url("bank-contents", bank), {"hashes": {"pdq": PDQ}}, format="json")
    assert added.status_code == 201
    blocked, seconds = other.blocked(fp)
    assert blocked and seconds < 1.0
    state = other.matcher._state
    assert state.entry_ids is built.entry_ids and len(state.extra) == 1  # applied, not rebuilt
    content_id = added.json()["content"]["id"]
    api.delete(url("bank-content", bank, content_id=content_id))
    blocked, seconds = other.blocked(fp)
    assert not blocked and seconds < 1.0


# -- the matcher's journal ---------------------------------------------------------------


def state_now():
    return matcher.matcher.state()


def test_changes_are_applied_from_the_journal_without_a_rebuild(bank, policy):
    base, _ = services.add_hashes(bank, {"pdq": PDQ, "phash": PHASH})
    built = state_now()
    new, _ = services.add_hashes(bank, {"pdq": random_pdq(1)})
    services.set_entries_enabled(base.entries.filter(algorithm="pdq"), False)
    state = state_now()
    assert state.entry_ids is built.entry_ids  # the same build ...
    assert len(state) == 2 and state.pending == 2  # ... with the changes beside it
    assert state.voters_of(base.pk) == {"phash"} and state.voters_of(new.pk) == {"pdq"}
    assert (
        BankJournal.objects.count() >= 2
        and not BankJournal.objects.filter(rebuild=True).filter(counter__gt=built.counter).exists()
    )
    services.set_entries_enabled(base.entries.all(), True)
    assert state_now().voters_of(base.pk) == {"pdq", "phash"} and not state_now().dead


def test_a_bank_change_or_a_broken_chain_rebuilds(bank, policy):
    services.add_hashes(bank, {"pdq": PDQ})
    built = state_now()
    bank.active = False
    services.save_bank(bank)
    rebuilt = state_now()
    assert rebuilt.entry_ids is not built.entry_ids and len(rebuilt) == 0
    bank.active = True
    services.save_bank(bank)
    before = state_now()
    BankVersion.bump(added=[1])
    BankJournal.objects.filter(counter=BankVersion.read()[1]).delete()  # a pruned row
    BankVersion.bump(added=[1])
    assert state_now().entry_ids is not before.entry_ids and len(state_now()) == 1


def test_changes_beyond_the_threshold_are_folded_into_a_new_build(bank, policy, monkeypatch):
    services.add_hashes(bank, {"pdq": PDQ})
    built = state_now()
    monkeypatch.setattr(BankMatcher, "COMPACT_MIN", 3)
    for i in range(4):
        services.add_hashes(bank, {"pdq": random_pdq(i)})
    state = state_now()
    assert state.entry_ids is not built.entry_ids and state.pending == 0 and len(state) == 5


def test_entries_committed_out_of_id_order_are_all_seen(bank, policy):
    """A journal row names its entries, so an import holding low ids that commits after a
    later change is not missed (a "newest id" watermark would miss it)."""
    services.add_hashes(bank, {"pdq": PDQ})
    state_now()
    low = BankContent.objects.create(bank=bank, source="import")
    early = BankEntry.objects.create(bank=bank, content=low, algorithm="pdq", value=random_pdq(8))
    services.add_hashes(bank, {"pdq": random_pdq(9)})  # commits first, with higher ids
    state_now()
    BankVersion.bump(added=[early.pk])  # the early one commits now
    assert state_now().lookup(early.pk)[0] == low.pk and len(state_now()) == 3


SCAM = "Earn money fast from home, visit our site for the details today"


def test_a_known_bad_message_is_banked_and_its_variants_are_blocked(
    api, bank, api_client_row, django_capture_on_commit_callbacks
):
    add = {"text": SCAM, "external_id": "scam-1"}
    answer = api.post(url("bank-contents", bank), add, format="json")
    assert answer.status_code == 201, answer.content
    content = answer.json()["content"]
    assert {e["algorithm"] for e in content["entries"]} == {"text_exact", "text_minhash"}
    assert content["note"] == SCAM[:200] and content["external_id"] == "scam-1"
    assert BankChange.objects.get(content_id=content["id"]).actor == api_client_row.user
    variant = "EARN M0NEY F4ST fr0m h0me!!! v!sit our s1te for the details today"
    with django_capture_on_commit_callbacks(execute=True):  # the analysis, after commit
        sent = api.post("/api/v1/analyses", {"text": variant, "user_uuid": "u"}, format="json")
    leet = api.get(f"/api/v1/analyses/{sent.json()['id']}").json()
    assert (leet["decision"], leet["reason"]) == ("flagged", "bank_match")
    assert {m["external_id"] for m in leet["bank_matches"]} == {"scam-1"}
    again = api.post(url("bank-contents", bank), add, format="json")
    assert again.status_code == 200 and not again.json()["created"]
    for bad in ("", "   ", "!!! ... ???", "x" * 10_001, ["a list"], {"an": "object"}):
        refused = api.post(url("bank-contents", bank), {"text": bad}, format="json")
        assert refused.status_code == 400, (bad, refused.content)
        assert "text" in refused.json()["fields"]
    assert BankContent.objects.count() == 1
