"""Issue 10: every picture of an item a moderator is shown sits in a reveal button
(templates/review/_picture.html), blurred until revealed: the queue's cards, their matched
past items and group thumbnails, the item pages and the evidence's side-by-side pictures.
The browser tests (test_reveal_browser.py) check what the button does; this one that no
page shows a picture outside one, and that the page has what the buttons need.
"""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from review.models import QueueEntry
from review.pipeline import analyse_item
from tests.conftest import encode
from tests.review.review_factories import rejected_item, review_item
from uploads.intake import ingest_bytes


class Pictures(HTMLParser):
    """The src of each <img> of an item, and whether it is inside a <button class="pic">."""

    def __init__(self):
        super().__init__()
        self.open_buttons: list[bool] = []
        self.shielded: list[str] = []
        self.bare: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "button":
            classes = (attrs.get("class") or "").split()
            self.open_buttons.append(
                "pic" in classes
                and attrs.get("type") == "button"
                and attrs.get("aria-pressed") == "false"
                and (attrs.get("aria-label") or "").startswith("Reveal")
            )
        elif tag == "img" and "/original/" in (attrs.get("src") or ""):
            (self.shielded if any(self.open_buttons) else self.bare).append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "button" and self.open_buttons:
            self.open_buttons.pop()


def pictures(html: str) -> Pictures:
    parser = Pictures()
    parser.feed(html)
    return parser


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


def test_the_queue_shows_every_picture_in_a_reveal_button(mod_client, uploader):
    earlier = review_item(uploader)
    QueueEntry.objects.filter(item=earlier).delete()
    lead = review_item(uploader, explicit=0.6, duplicates=[earlier])
    members = [review_item(uploader, explicit=0.5 - i / 10) for i in range(2)]
    QueueEntry.objects.filter(item__in=[lead, *members]).update(group_key=lead.uuid)
    mod_client.post(reverse("review:claim"), {"count": 5})
    html = mod_client.get(reverse("review:queue")).content.decode()
    found = pictures(html)
    expected = {reverse("uploads:original", args=[i.uuid]) for i in (lead, earlier, *members)}
    assert set(found.shielded) == expected  # the item, the match, both group members
    assert found.bare == []
    assert "js/reveal.js" in html and 'id="grey-toggle"' in html
    assert "<kbd>g</kbd>" in html  # greyscale's key is listed with the others


def test_the_item_pages_show_the_item_and_its_evidence_in_reveal_buttons(
    mod_client, uploader, moderator, outsider, photo
):
    cat = photo("chelsea")
    past = rejected_item(encode(cat), uploader, moderator)
    small = cat.resize((cat.width // 2, cat.height // 2))
    item = ingest_bytes(encode(small, quality=60), name="copy.jpg", source="web", uploader=outsider)
    analyse_item(item.pk)

    html = mod_client.get(reverse("review:item", args=[item.uuid])).content.decode()
    found = pictures(html)
    here, there = (reverse("uploads:original", args=[i.uuid]) for i in (item, past))
    assert sorted(found.shielded) == sorted([here, here, there])  # top; beside the past item
    assert found.bare == []
    assert "js/reveal.js" in html and 'data-picture-pref="grey"' in html

    # The plain item page, as a moderator opens it from the feed or a link.
    html = mod_client.get(reverse("uploads:item", args=[item.uuid])).content.decode()
    assert pictures(html).shielded == [here] and pictures(html).bare == []
    assert "js/reveal.js" in html


def test_an_uploader_sees_their_own_item_page_without_the_blur(client, uploader):
    item = review_item(uploader)
    client.force_login(uploader)
    html = client.get(reverse("uploads:item", args=[item.uuid])).content.decode()
    found = pictures(html)
    assert found.bare == [reverse("uploads:original", args=[item.uuid])]
    assert "js/reveal.js" not in html
