"""A text item in review: the thread above it, the matched spans highlighted in what the
author wrote, scores per category, in the same queue as pictures."""

import pytest
from django.urls import reverse

from review.models import Category, QueueEntry, Term
from review.text_evidence import segments
from uploads import intake, text
from uploads.models import MediaItem


def test_segments_cut_the_text_at_the_spans():
    parts = segments("you f4gg0t lol", [{"start": 4, "end": 10, "kind": "block"}])
    assert [(p.text, p.match is not None) for p in parts] == [
        ("you ", False),
        ("f4gg0t", True),
        (" lol", False),
    ]


@pytest.mark.django_db
def test_a_text_in_the_queue_shows_its_thread_highlight_and_scores(
    client, moderator, uploader, policy, django_capture_on_commit_callbacks
):
    hate = Category.objects.get(policy=policy, name="hate")
    Term.objects.create(policy=policy, category=hate, kind="block", text="faggot*")
    body = 'you too, <b>f4gg0t</b> & "friends"'
    with django_capture_on_commit_callbacks(execute=True):
        result = intake.take(
            [text.text_submission(body, [{"text": "You are a disgusting pig", "author": "ann"}])],
            source="web",
            uploader=uploader,
        )
    item = MediaItem.objects.get(pk=result.accepted[0].pk)
    # Flagged on a term, and queued for a person to confirm (Policy.confirm_model_flags).
    assert (item.status, item.reason) == (MediaItem.Status.FLAGGED, "hate_flagged")
    assert QueueEntry.objects.filter(item=item).exists()
    client.force_login(moderator)
    client.post(reverse("review:claim"), {"count": 5})
    page = client.get(reverse("review:queue")).content.decode()
    assert 'class="text-item"' in page
    assert "You are a disgusting pig" in page and '<span class="who">ann</span>' in page
    assert '<mark class="term-block" title="block term “faggot*” (hate)">f4gg0t</mark>' in page
    assert "&lt;b&gt;" in page and "<b>f4gg0t" not in page  # the author's markup is escaped
    assert '<span class="cat">hate</span>' in page
    assert f'src="/uploads/items/{item.uuid}/original/"' not in page  # no picture for text
    history = client.get(reverse("review:item", args=[item.uuid])).content.decode()
    assert "term-block" in history and "You are a disgusting pig" in history
