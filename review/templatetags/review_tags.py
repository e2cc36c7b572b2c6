from django import template

from ..models import Policy, QueueEntry
from ..text_evidence import text_evidence

register = template.Library()


@register.inclusion_tag("review/_history.html", takes_context=True)
def review_history(context, item):
    """An item's decisions (and, for moderators, who decided and the author's strikes).

    Usable on any item page: `{% load review_tags %}{% review_history item %}`.
    """
    user = context.get("user")
    moderator = bool(user and user.is_authenticated and user.has_perm("review.moderate"))
    can_override = bool(moderator and user.has_perm("review.override"))
    author = item.author
    return {
        "item": item,
        "decisions": list(item.decisions.select_related("moderator").order_by("decided_at", "pk")),
        "entry": QueueEntry.objects.select_related("claimed_by").filter(item=item).first()
        if moderator
        else None,
        "strikes": list(author.strike_records.all()[:20]) if author and moderator else [],
        "show_moderators": moderator,
        "can_override": can_override and item.status != "processing",
        "reasons": Policy.current().reject_reason_list if can_override else [],
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("review/_text.html")
def text_item(item, analysis=None):
    """A text item's thread, highlighted text and scores (review.text_evidence)."""
    return {"ev": text_evidence(item, analysis)}
