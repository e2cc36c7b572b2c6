"""Banks and entries: reference pictures, hash lists, reviewed items, audit, admin pages."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from hashing import matcher, services
from hashing.algorithms import ALGORITHMS, fingerprint, names
from hashing.models import Bank, BankChange, BankContent, BankEntry, BankVersion, Fingerprint
from review.pipeline import analyse_item
from uploads.intake import ingest_bytes
from uploads.kinds import open_for_hashing

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "d8f8f0cce0f4e84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


@pytest.fixture
def bank(db, admin_user):
    return services.create_bank("known bad", actor=admin_user, description="test")


def hex_of(fp: dict) -> dict[str, str]:
    return {name: ALGORITHMS[name].to_hex(fp[name]) for name in names("image")}


def entries_of(content) -> dict[str, str]:
    return dict(content.entries.values_list("algorithm", "value"))


# -- reference pictures --------------------------------------------------------------


def test_a_reference_picture_gives_one_entry_per_algorithm_and_is_audited(bank, jpeg, admin_user):
    data = jpeg("chelsea")
    result = services.add_images(bank, [("cat.jpg", data)], actor=admin_user, note="case 17")
    (content,) = result["added"]
    expected = hex_of(fingerprint(open_for_hashing(data), mirrored=False))
    assert entries_of(content) == expected
    assert content.source == BankContent.Source.IMAGE and content.name == "cat.jpg"
    assert set(content.entries.values_list("note", flat=True)) == {"case 17"}
    change = BankChange.objects.get(action=BankChange.Action.IMAGES_ADDED)
    assert change.actor == admin_user and change.content == content
    assert change.detail["entries"] == expected and change.bank_name == "known bad"


def test_reference_pictures_are_hashed_exactly_like_uploads(bank, jpeg, uploader):
    """The old system hashed bank and query differently; here they share one path."""
    data = jpeg("astronaut", quality=80)
    item = ingest_bytes(data, name="a.jpg", source="web", uploader=uploader)
    analyse_item(item.pk)
    stored = dict(
        Fingerprint.objects.filter(item=item, mirrored=False).values_list("algorithm", "value")
    )
    assert set(stored) == set(names("image"))
    (content,) = services.add_images(bank, [("a.jpg", data)])["added"]
    assert entries_of(content) == stored


def test_the_same_picture_twice_is_skipped(bank, jpeg):
    data = jpeg("coffee")
    services.add_images(bank, [("one.jpg", data)])
    result = services.add_images(bank, [("again.jpg", data), ("rocket.jpg", jpeg("rocket"))])
    assert result["skipped"] == ["again.jpg"] and len(result["added"]) == 1
    assert BankContent.objects.filter(bank=bank, variant_of=None).count() == 2


def test_an_unreadable_reference_refuses_the_whole_batch(bank, jpeg):
    with pytest.raises(services.BankError, match="“notes.txt” is not an image"):
        services.add_images(bank, [("ok.jpg", jpeg("coffee")), ("notes.txt", b"hello")])
    assert (
        not BankEntry.objects.exists()
        and not BankChange.objects.filter(action=BankChange.Action.IMAGES_ADDED).exists()
    )


def test_a_featureless_reference_is_refused_with_a_reason(bank):
    from PIL import Image

    from tests.conftest import encode

    flat = encode(Image.new("RGB", (200, 200), (120, 120, 120)), "PNG")
    with pytest.raises(services.BankError, match="“grey.png” has too little detail"):
        services.add_images(bank, [("grey.png", flat)])
    assert not BankContent.objects.exists()


def test_a_gradient_reference_keeps_only_the_hashes_that_say_something(bank):
    """A smooth gradient: aHash and PDQ carry information, dhash, phash_simple and phash do not."""
    import numpy as np
    from PIL import Image

    from tests.conftest import encode

    ramp = np.tile(np.linspace(0, 255, 320), (240, 1)).astype(np.uint8)
    (content,) = services.add_images(bank, [("ramp.png", encode(Image.fromarray(ramp), "PNG"))])[
        "added"
    ]
    assert set(entries_of(content)) == {"ahash"}  # PDQ rates it 44: below its 50 too


# -- reviewed items ---------------------------------------------------------------------


def test_add_item_to_bank_hashes_the_stored_original(bank, jpeg, uploader, moderator):
    item = ingest_bytes(jpeg("rocket"), name="r.jpg", source="web", uploader=uploader)
    analyse_item(item.pk)
    item.refresh_from_db()
    content = services.add_item_to_bank(item, bank, actor=moderator, note="rejected: spam")
    assert content.source == BankContent.Source.REVIEW_ITEM and content.source_item == item
    assert (
        entries_of(content)["pdq"] == item.fingerprints.get(algorithm="pdq", mirrored=False).value
    )
    change = BankChange.objects.get(action=BankChange.Action.ITEM_ADDED)
    assert change.actor == moderator and change.detail["item"] == str(item.uuid)
    assert services.add_item_to_bank(item, bank, actor=moderator) == content  # idempotent
    assert BankContent.objects.filter(variant_of=None).count() == 1
    # Its rotated versions come along, with the item as their source too.
    versions = content.variants.all()
    assert [v.name for v in versions.order_by("pk")] == [
        "r.jpg (rotated +4°, cropped)",
        "r.jpg (rotated +4°, black corners)",
        "r.jpg (rotated -4°, cropped)",
        "r.jpg (rotated -4°, black corners)",
    ]
    assert all(v.source_item == item and v.entries.exists() for v in versions)
    assert change.detail["rotated_versions"] == 4


# -- hash lists -------------------------------------------------------------------------


def test_a_pdq_list_as_threatexchange_writes_it_imports(bank, admin_user):
    text = f"hash_type,hash_value,note\nPDQ,{PDQ_A.upper()},from TE\npdq_hash,{PDQ_B},\n"
    result = services.import_hash_list(bank, io.StringIO(text), actor=admin_user)
    assert result.added_entries == 2 and result.added_contents == 2
    assert set(BankEntry.objects.values_list("algorithm", "value", "note")) == {
        ("pdq", PDQ_A, "from TE"),
        ("pdq", PDQ_B, ""),
    }
    change = BankChange.objects.get(action=BankChange.Action.HASHES_IMPORTED)
    assert change.actor == admin_user and change.detail["added_entries"] == 2


def test_a_list_without_a_header_and_with_comments_imports(bank):
    lines = ["# exported 2026-11-01", "", "ahash,00ff00ff00ff00ff", "dhash,0x0123456789ABCDEF,x"]
    result = services.import_hash_list(bank, lines)
    assert result.added_entries == 2
    assert BankEntry.objects.get(algorithm="dhash").value == "0123456789abcdef"


def test_bad_rows_are_named_by_line_and_nothing_is_imported(bank):
    text = (
        "hash_type,hash_value,note\n"
        f"pdq,{PDQ_A},good\n"
        "pdq,abc,too short\n"
        "sha1,00ff00ff00ff00ff\n"
        "ahash,zzzzzzzzzzzzzzzz\n"
    )
    with pytest.raises(services.BankError) as exc:
        services.import_hash_list(bank, io.StringIO(text))
    message = str(exc.value)
    assert "Nothing was imported" in message
    assert "line 3: a pdq hash is 64 hex characters" in message
    assert "line 4: unknown hash type “sha1”" in message
    assert "line 5: a ahash hash is 16 hex characters" in message
    assert not BankEntry.objects.exists()


def test_reimporting_a_list_skips_what_is_there(bank):
    lines = [f"pdq,{PDQ_A}", f"pdq,{PDQ_B}"]
    services.import_hash_list(bank, lines)
    version = BankVersion.current()
    result = services.import_hash_list(bank, lines + ["ahash,00ff00ff00ff00ff"])
    assert result.added_entries == 1 and result.skipped == 2
    assert BankEntry.objects.count() == 3 and BankVersion.current() != version


def test_import_and_export_round_trip_keeps_pictures_together(bank, jpeg, policy):
    services.add_images(bank, [("cat.jpg", jpeg("chelsea")), ("cup.jpg", jpeg("coffee"))])
    services.import_hash_list(bank, [f"pdq,{PDQ_A},shared", "phash,1234567890abcdef,legacy"])
    disabled = BankEntry.objects.get(algorithm="phash", value="1234567890abcdef")
    services.set_entries_enabled([disabled], False)
    out = io.StringIO()
    assert services.export_hash_list(bank, out) == 11
    text = out.getvalue()
    assert text.splitlines()[0] == "hash_type,hash_value,note,content,external_id"

    copy = services.create_bank("copy")
    result = services.import_hash_list(copy, io.StringIO(text))
    counts = (result.rows, result.added_entries, result.added_contents, result.skipped)
    assert counts == (11, 11, 3, 0)

    def signature(b):
        return sorted(
            tuple(sorted(c.entries.values_list("algorithm", "value", "note")))
            for c in b.contents.filter(variant_of=None)
            if c.entries.filter(enabled=True).exists()
        )

    assert signature(copy) == signature(bank)
    # The copy blocks like the original: pictures keep their five voters together.
    bank.active = False
    services.save_bank(bank)
    query = fingerprint(open_for_hashing(jpeg("chelsea", quality=40)))
    result = matcher.vote(query, policy)
    assert result["blocked"] and result["bank"] == "copy"
    assert result["votes"] == result["eligible"] == 9  # all five: four weigh 2
    assert BankChange.objects.filter(action=BankChange.Action.EXPORTED, bank=bank).exists()


def test_pdq_hex_is_the_hex_of_the_256_bits_most_significant_first():
    """ThreatExchange writes PDQ as hex of the bit string in hash-vector order."""
    import numpy as np
    import pdqhash
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    vector, _ = pdqhash.compute(pixels)
    bits = "".join(str(int(b)) for b in vector)
    reference = format(int(bits, 2), "064x")
    value = ALGORITHMS["pdq"].compute(Image.fromarray(pixels))
    assert ALGORITHMS["pdq"].to_hex(value) == reference


# -- banks and entries ------------------------------------------------------------------


def test_bank_changes_are_audited_with_old_and_new_values(bank, admin_user):
    created = BankChange.objects.get(action=BankChange.Action.BANK_CREATED)
    assert created.actor == admin_user and created.detail["kind"] == "block"
    bank.active, bank.description = False, "paused"
    services.save_bank(bank, actor=admin_user)
    changed = BankChange.objects.get(action=BankChange.Action.BANK_CHANGED)
    assert changed.detail == {"active": [True, False], "description": ["test", "paused"]}


def test_disabling_entries_keeps_them_and_audits_each(bank, admin_user):
    services.import_hash_list(bank, [f"pdq,{PDQ_A}", f"pdq,{PDQ_B}"])
    count = services.set_entries_enabled(BankEntry.objects.all(), False, actor=admin_user)
    assert count == 2 and BankEntry.objects.filter(enabled=False).count() == 2
    assert services.set_entries_enabled(BankEntry.objects.all(), False) == 0
    audit = BankChange.objects.filter(action=BankChange.Action.ENTRY_DISABLED)
    assert audit.count() == 2 and {c.actor for c in audit} == {admin_user}


# -- admin ---------------------------------------------------------------------------------


def test_an_admin_uploads_reference_pictures_in_admin(client, admin_user, bank, jpeg):
    client.force_login(admin_user)
    url = reverse("admin:hashing_bank_add_images", args=[bank.pk])
    assert client.get(url).status_code == 200
    files = [
        SimpleUploadedFile("cat.jpg", jpeg("chelsea")),
        SimpleUploadedFile("cup.jpg", jpeg("coffee")),
    ]
    response = client.post(url, {"images": files, "note": "from admin"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert BankContent.objects.filter(bank=bank, variant_of=None).count() == 2
    assert (
        BankEntry.objects.filter(bank=bank, note="from admin", content__variant_of=None).count()
        == 10
    )
    page = client.get(reverse("admin:hashing_bank_change", args=[bank.pk])).content.decode()
    assert "Upload reference images" in page and "Import CSV" in page


def test_an_unreadable_picture_in_admin_shows_an_error(client, admin_user, bank):
    client.force_login(admin_user)
    url = reverse("admin:hashing_bank_add_images", args=[bank.pk])
    response = client.post(url, {"images": [SimpleUploadedFile("x.jpg", b"not an image")]})
    assert response.status_code == 200 and "is not an image that can be read" in (
        response.content.decode()
    )


def test_admin_imports_and_exports_csv(client, admin_user, bank):
    client.force_login(admin_user)
    csv_file = SimpleUploadedFile("list.csv", f"hash_type,hash_value\npdq,{PDQ_A}\n".encode())
    response = client.post(reverse("admin:hashing_bank_import", args=[bank.pk]), {"file": csv_file})
    assert response.status_code == 302
    assert BankEntry.objects.get().value == PDQ_A
    bad = SimpleUploadedFile("bad.csv", b"pdq,123\n")
    response = client.post(reverse("admin:hashing_bank_import", args=[bank.pk]), {"file": bad})
    assert response.status_code == 200 and "line 1:" in response.content.decode()
    response = client.get(reverse("admin:hashing_bank_export", args=[bank.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert f"pdq,{PDQ_A}," in response.content.decode()


def test_admin_creates_a_bank_and_the_change_is_audited(client, admin_user, db):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:hashing_bank_add"),
        {"name": "shared list", "kind": "block", "active": "on", "description": ""},
    )
    assert response.status_code == 302
    bank = Bank.objects.get(name="shared list")
    assert bank.created_by == admin_user
    assert BankChange.objects.get(bank=bank).action == BankChange.Action.BANK_CREATED


def test_entry_admin_disables_entries_with_an_action(client, admin_user, bank):
    services.import_hash_list(bank, [f"pdq,{PDQ_A}"])
    entry = BankEntry.objects.get()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:hashing_bankentry_changelist"),
        {"action": "disable_entries", "_selected_action": [entry.pk]},
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert not entry.enabled
    assert BankChange.objects.get(action=BankChange.Action.ENTRY_DISABLED).actor == admin_user


def test_the_bank_audit_cannot_be_edited_in_admin(client, admin_user, bank):
    client.force_login(admin_user)
    change = BankChange.objects.get()
    url = reverse("admin:hashing_bankchange_change", args=[change.pk])
    response = client.post(url, {"action": "bank_changed"})
    assert response.status_code == 403
    change.refresh_from_db()
    assert change.action == BankChange.Action.BANK_CREATED


def test_media_item_admin_adds_items_to_a_bank(client, admin_user, bank, uploader, jpeg):
    item = ingest_bytes(jpeg("coins"), name="c.jpg", source="web", uploader=uploader)
    client.force_login(admin_user)
    url = reverse("admin:uploads_mediaitem_changelist")
    chooser = client.post(url, {"action": "add_to_bank", "_selected_action": [item.pk]})
    assert chooser.status_code == 200 and "Add to bank" in chooser.content.decode()
    response = client.post(
        url,
        {"action": "add_to_bank", "_selected_action": [item.pk], "apply": "1", "bank": bank.pk},
    )
    assert response.status_code == 302
    assert BankContent.objects.get(source_item=item, variant_of=None).entries.count() == 5


def test_people_without_bank_permissions_cannot_reach_bank_pages(
    client, moderator, policy_admin, bank, django_user_model
):
    pages = [reverse(f"admin:hashing_bank_{n}", args=[bank.pk]) for n in ("add_images", "import")]
    everything = pages + [reverse("admin:hashing_bank_export", args=[bank.pk])]
    client.force_login(moderator)  # not staff
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = django_user_model.objects.create_user("staffonly", password="x", is_staff=True)
    client.force_login(staff)  # staff, without the policy-admin role's bank permissions
    for url in everything:
        assert client.get(url).status_code == 403
    client.force_login(policy_admin)  # the role grants them
    for url in everything:
        assert client.get(url).status_code == 200


# -- management commands ------------------------------------------------------------------


def test_import_bank_command_creates_the_bank_and_shows_progress(tmp_path, db):
    path = tmp_path / "list.csv"
    rows = [f"pdq,{i:064x},row {i}" for i in range(1, 2501)]
    path.write_text("hash_type,hash_value,note\n" + "\n".join(rows) + "\n")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_bank",
        "te-list",
        str(path),
        "--create",
        "--batch-size",
        "1000",
        stdout=out,
        stderr=err,
    )
    assert "Imported 2,500 hashes as 2,500 references with one hash each (pdq)" in out.getvalue()
    assert "2,500/2,500 entries (100%)" in err.getvalue()
    bank = Bank.objects.get(name="te-list")
    assert bank.kind == "block" and bank.entries.count() == 2500

    export = tmp_path / "out.csv"
    call_command("export_bank", "te-list", str(export), stderr=io.StringIO())
    lines = export.read_text().splitlines()
    assert lines[0] == "hash_type,hash_value,note,content,external_id" and len(lines) == 2501
    assert lines[1].startswith(f"pdq,{1:064x},row 1,c")


def test_import_bank_command_refuses_bad_input_and_unknown_banks(tmp_path, db):
    path = tmp_path / "bad.csv"
    path.write_text("pdq,xyz\n")
    with pytest.raises(CommandError, match="No bank named"):
        call_command("import_bank", "missing", str(path))
    with pytest.raises(CommandError, match="line 1"):
        call_command("import_bank", "new", str(path), "--create", stderr=io.StringIO())
    assert not Bank.objects.filter(name="new").exists()


def test_every_bank_admin_page_renders(client, admin_user, bank, jpeg):
    (content,) = services.add_images(bank, [("cup.jpg", jpeg("coffee"))])["added"]
    entry = content.entries.first()
    client.force_login(admin_user)
    urls = [
        reverse("admin:hashing_bank_changelist"),
        reverse("admin:hashing_bank_add"),
        reverse("admin:hashing_bank_change", args=[bank.pk]),
        reverse("admin:hashing_bank_import", args=[bank.pk]),
        reverse("admin:hashing_bankcontent_changelist"),
        reverse("admin:hashing_bankcontent_change", args=[content.pk]),
        reverse("admin:hashing_bankentry_changelist") + f"?bank__id__exact={bank.pk}",
        reverse("admin:hashing_bankentry_change", args=[entry.pk]),
        reverse("admin:hashing_bankchange_changelist"),
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_disabling_an_entry_on_its_admin_page_is_audited(client, admin_user, bank):
    services.import_hash_list(bank, [f"pdq,{PDQ_A}"])
    entry = BankEntry.objects.get()
    client.force_login(admin_user)
    response = client.post(reverse("admin:hashing_bankentry_change", args=[entry.pk]), {})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert not entry.enabled
    assert BankChange.objects.get(action=BankChange.Action.ENTRY_DISABLED).entry == entry
