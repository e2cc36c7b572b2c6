"""Request and answer shapes of the hash and bank endpoints (api.hashes, api.banks).

Hashes are lowercase hex, most significant first (PDQ 64 characters, the 64-bit voters
16), keyed by algorithm name; the ``hashes`` map of ``POST hashes`` can be posted to
``lookup`` or to a bank as it is.
"""

from rest_framework import serializers

HEX_MAP_HELP = "{algorithm: lowercase hex}. Names are imagehash's and PDQ's; aliases accepted."


class HexMap(serializers.DictField):
    child = serializers.CharField()


# -- hashes ---------------------------------------------------------------------------


class UrlRequest(serializers.Serializer):
    url = serializers.URLField(
        max_length=2000, help_text="Fetched through the SSRF guard (public addresses only)."
    )


class FileRequest(serializers.Serializer):
    file = serializers.FileField(help_text="A JPEG, PNG, GIF or WebP image.")


class FrameHashes(serializers.Serializer):
    number = serializers.IntegerField(help_text="Frame number, from 1.")
    hashes = HexMap()
    quality = serializers.DictField(child=serializers.IntegerField())
    mirror = HexMap(required=False)


class HashesResponse(serializers.Serializer):
    kind = serializers.CharField(help_text="The media kind, e.g. image.")
    sha256 = serializers.CharField()
    hashes = HexMap(help_text="Every algorithm's hash: " + HEX_MAP_HELP)
    quality = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="0-100 per algorithm that rates itself; below 50 the hash abstains.",
    )
    informative = serializers.DictField(
        child=serializers.BooleanField(),
        help_text="Whether each hash says enough to vote (a flat picture's do not).",
    )
    mirror = HexMap(
        required=False, help_text="The hashes of the mirrored picture (when the policy says so)."
    )
    frames = FrameHashes(
        many=True, required=False, help_text="Animations: every sampled frame's hashes."
    )
    total_frames = serializers.IntegerField()


# -- lookup ---------------------------------------------------------------------------


class LookupRequest(serializers.Serializer):
    """One of: ``algorithm`` and ``hash``; ``hashes``; ``url``. (Or a file, multipart
    ``file``, or the image itself as the body.)"""

    algorithm = serializers.CharField(
        required=False, max_length=40, help_text="e.g. pdq, phash, average_hash."
    )
    hash = serializers.CharField(required=False, max_length=200)
    hashes = HexMap(required=False, help_text="Several hashes of one picture: " + HEX_MAP_HELP)
    quality = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=100),
        required=False,
        help_text="Quality per algorithm, when known (a PDQ hash below 50 abstains).",
    )
    url = serializers.URLField(required=False, max_length=2000)


class LookupMatch(serializers.Serializer):
    bank = serializers.CharField()
    bank_id = serializers.IntegerField()
    bank_kind = serializers.CharField(help_text="block or allow.")
    content_id = serializers.IntegerField(help_text="The content as it was added.")
    variant = serializers.BooleanField(
        help_text="Matched a rotated version banked with the reference picture."
    )
    entry_id = serializers.IntegerField()
    algorithm = serializers.CharField()
    distance = serializers.IntegerField()
    mirrored = serializers.BooleanField(help_text="Matched the mirrored query hash.")
    external_id = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)


class VoterVote(serializers.Serializer):
    vote = serializers.BooleanField()
    entry_id = serializers.IntegerField(allow_null=True)
    distance = serializers.IntegerField(allow_null=True)
    mirrored = serializers.BooleanField()


class Verdict(serializers.Serializer):
    """The bank side of the upload path's decision (review.outcomes.decide): classifiers
    and near duplicates are not part of a lookup."""

    blocked = serializers.BooleanField(help_text="A block content reached its quorum.")
    allowed = serializers.BooleanField(help_text="An allow content reached its quorum.")
    reason = serializers.ChoiceField(choices=["bank_match", "allow_listed", "no_match"])
    detail = serializers.CharField()
    bank = serializers.CharField(allow_blank=True, help_text="The deciding block content's bank.")
    content_id = serializers.IntegerField(allow_null=True)
    allow_bank = serializers.CharField(allow_blank=True)
    allow_content_id = serializers.IntegerField(allow_null=True)
    votes = serializers.IntegerField(help_text="Vote weight for the deciding block content.")
    eligible = serializers.IntegerField(help_text="Vote weight able to vote on it.")
    quorum = serializers.IntegerField(help_text="Vote weight needed.")
    voters = serializers.IntegerField(help_text="Vote weight of the voters that hashed.")
    strict = serializers.BooleanField(
        help_text="Judged by the strict rule (a content with too few hashes for a vote)."
    )
    thresholds = serializers.DictField(child=serializers.IntegerField())
    per_voter = serializers.DictField(child=VoterVote())


class LookupQuery(serializers.Serializer):
    source = serializers.ChoiceField(choices=["hash", "file", "url"])
    hashes = HexMap()
    quality = serializers.DictField(child=serializers.IntegerField())


class LookupResponse(serializers.Serializer):
    query = LookupQuery()
    matches = LookupMatch(
        many=True, help_text="Every live entry within its voter's threshold, nearest first."
    )
    verdict = Verdict()


# -- banks ----------------------------------------------------------------------------


class BankSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["block", "allow"])
    active = serializers.BooleanField()
    description = serializers.CharField(allow_blank=True)
    entries = serializers.IntegerField(help_text="Enabled entries.")
    disabled_entries = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class BankList(serializers.Serializer):
    results = BankSerializer(many=True)


class EntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    content_id = serializers.IntegerField()
    algorithm = serializers.CharField()
    value = serializers.CharField()
    enabled = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ContentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bank_id = serializers.IntegerField()
    source = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)
    external_id = serializers.CharField(allow_blank=True)
    sha256 = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField(help_text="Whether any of its hashes is enabled.")
    entries = EntrySerializer(many=True)
    rotated_versions = serializers.IntegerField(
        help_text="Rotated versions banked with a reference picture (matched as it)."
    )
    created_at = serializers.DateTimeField()


class ContentPage(serializers.Serializer):
    results = ContentSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL, if any.")


class AddContentRequest(serializers.Serializer):
    """JSON: ``hashes`` (one picture's hashes, computed elsewhere), ``url`` (a reference
    picture fetched through the SSRF guard) or ``text`` (a known bad message); multipart:
    ``file`` (a reference picture)."""

    hashes = HexMap(required=False, help_text=HEX_MAP_HELP)
    url = serializers.URLField(required=False, max_length=2000)
    text = serializers.CharField(
        required=False,
        max_length=10_000,
        help_text="A known bad message: banked as its text_exact and text_minhash hashes "
        "(after normalising confusables, leetspeak, spacing and repeated letters), so its "
        "variants match too. The note is its first 200 characters unless one is given.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
    external_id = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Your own id for it."
    )


class AddContentFileRequest(serializers.Serializer):
    file = serializers.FileField(help_text="A reference picture: hashed, then dropped.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=255)


class AddContentResponse(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: it was in the bank already.")
    content = ContentSerializer()
    votes_as = serializers.CharField(help_text="How its hashes will vote under the policy.")


class HashContent(serializers.Serializer):
    hashes = HexMap(help_text=HEX_MAP_HELP)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=255)


class AddContentsRequest(serializers.Serializer):
    contents = HashContent(many=True, allow_empty=False, max_length=1000)


class ContentBatchResult(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: it was in the bank already.")
    content_id = serializers.IntegerField()
    external_id = serializers.CharField(allow_blank=True)
    entries = serializers.DictField(child=serializers.IntegerField(), help_text="{algorithm: id}")


class BatchVotes(serializers.Serializer):
    algorithms = serializers.ListField(child=serializers.CharField())
    contents = serializers.IntegerField(help_text="New contents holding these algorithms.")
    sentence = serializers.CharField(help_text="How they will vote under the policy.")


class AddContentsResponse(serializers.Serializer):
    results = ContentBatchResult(many=True, help_text="One per content sent, in order.")
    created = serializers.IntegerField()
    votes = BatchVotes(many=True)


class EnabledRequest(serializers.Serializer):
    enabled = serializers.BooleanField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ContentChanged(serializers.Serializer):
    changed = serializers.IntegerField(help_text="Entries switched (rotated versions included).")
    content = ContentSerializer()


class EntryChanged(serializers.Serializer):
    changed = serializers.IntegerField()
    entry = EntrySerializer()


class ImportRequest(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV: hash_type,hash_value[,note[,content[,external_id]]]."
    )
    samples = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text="Up to 20 pictures known to be in the list, to check its labels.",
    )


class ImportReportSerializer(serializers.Serializer):
    summary = serializers.CharField()
    file = serializers.CharField(allow_blank=True)
    rows = serializers.IntegerField()
    added_entries = serializers.IntegerField()
    added_contents = serializers.IntegerField()
    skipped = serializers.IntegerField()
    votes = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    checks = serializers.ListField(child=serializers.CharField())
    seconds = serializers.FloatField()
