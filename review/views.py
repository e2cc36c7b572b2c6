"""Review pages: thin views over review.claims and review.decisions.

Forms work without JavaScript (post, redirect, message); the page's script asks for JSON.
Refusals keep their status either way: 400 bad input, 403 not a moderator, 409 not yours.
"""

from functools import wraps
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Strike
from accounts.sessions import credential_of
from hashing import services as bank_services
from hashing.forms import AddToBankForm
from hashing.models import Bank, BankContent
from moderation_site.errors import Invalid, describe, error_body, error_response, json_error
from moderation_site.http import wants_json
from uploads.models import MediaItem

from . import access, claims, counts, decisions, health
from .evidence import evidence_for
from .models import Decision, Policy

KEYS = [
    ("a", "approve the current item (or the selected ones)"),
    ("r", "reject, with the reason chosen above"),
    ("j / →", "next item"),
    ("k / ←", "previous item"),
    ("x", "select or unselect the current item"),
    ("v", "reveal the current item's images (again to blur them); or click a picture"),
    ("b", "blur on or off for all images"),
    ("g", "greyscale on or off for all images (revealed ones too)"),
    ("f", "fetch more"),
    ("u", "release everything not decided"),
    ("/", "write a reason"),
]


def moderator_view(view):
    """Signed-in moderators only (403 for others); service refusals keep their status."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated and not wants_json(request):
            return redirect_to_login(request.get_full_path())
        if not access.is_moderator(request.user):
            if wants_json(request):
                return json_error(403, "forbidden", "Only moderators can review items.")
            raise PermissionDenied("Only moderators can review items.")
        try:
            return view(request, *args, **kwargs)
        except MediaItem.DoesNotExist:
            if wants_json(request):
                return json_error(404, "not_found", "No such item.")
            raise Http404("No such item.") from None
        except (claims.ClaimConflict, ValidationError) as exc:
            return _refuse(request, exc)

    return wrapped


def _refuse(request, exc: Exception):
    """A refusal in the one error shape for the script; the queue page with a message for
    a form post. Same status either way."""
    if wants_json(request):
        return error_response(exc)
    status, body = describe(exc)
    return _render_queue(request, status=status, error=body["detail"])


def _cards(entries) -> list[dict]:
    """One card per group of near duplicates: the most severe item leads, the rest follow."""
    cards: dict = {}
    for entry in entries:
        key = entry.group_key or entry.item.uuid
        if key in cards:
            cards[key]["members"].append(entry.item)
        else:
            cards[key] = {"entry": entry, "item": entry.item, "members": []}
    return list(cards.values())


def _render_queue(request, status=200, error=None):
    entries = claims.claimed_entries(request.user).prefetch_related(
        Prefetch("item__author__strike_records", queryset=Strike.objects.order_by("-created_at"))
    )
    policy = Policy.current()
    if error:
        messages.error(request, error)
    context = {
        "cards": _cards(entries),
        "stats": counts.pending_stats(request.user),
        "policy": policy,
        "keys": KEYS,
        "max_reason": decisions.MAX_REASON,
    }
    return render(request, "review/queue.html", context, status=status)


@require_GET
@moderator_view
def queue_page(request):
    return _render_queue(request)


@require_POST
@moderator_view
def claim(request):
    entries = claims.claim_items(
        request.user, request.POST.get("count"), source=credential_of(request)
    )
    if wants_json(request):
        # One read for all the claim's items (each entry's own item was a read of its own).
        uuids = dict(
            MediaItem.objects.filter(pk__in=[e.item_id for e in entries]).values_list("pk", "uuid")
        )
        return JsonResponse({"items": [str(uuids[e.item_id]) for e in entries]})
    if entries:
        messages.success(request, f"{len(entries)} item(s) are yours for now.")
    else:
        messages.info(request, "Nothing is waiting for review.")
    return redirect("review:queue")


@require_POST
@moderator_view
def release(request):
    """The page's Release: what this browser session claimed (the same moderator's other
    browsers and API tokens keep theirs), or the items named."""
    wanted = _uuids(request.POST.getlist("items")) if request.POST.getlist("items") else None
    released = claims.release_claims(
        request.user, wanted, source=None if wanted else credential_of(request)
    )
    if wants_json(request):
        return JsonResponse({"released": released})
    messages.info(request, f"Released {released} item(s) back to the queue.")
    return redirect("review:queue")


@require_POST
@moderator_view
def heartbeat(request):
    held = claims.heartbeat(request.user)
    return JsonResponse(
        {
            "held": [str(e.item.uuid) for e in held],
            "lease_expires_at": held[0].lease_expires_at.isoformat() if held else None,
        }
    )


@require_GET
@moderator_view
def stats(request):
    return JsonResponse(counts.pending_stats(request.user))


@require_POST
@moderator_view
def decide(request):
    """Several selected items at once, each with its own claim check."""
    uuids = _uuids(request.POST.getlist("items"))
    if not uuids:
        raise ValidationError("Select at least one item.")
    return _decide(request, uuids)


@require_POST
@moderator_view
def decide_one(request, item_uuid):
    return _decide(request, [item_uuid])


def _decide(request, uuids):
    reason = decisions.compose_reason(request.POST.get("reason_choice"), request.POST.get("reason"))
    decision, reason = decisions.clean_decision(request.POST.get("decision"), reason)
    decided: list[Decision] = []
    conflicts = []
    for item_uuid in uuids:
        if str(item_uuid) in {str(d.item.uuid) for d in decided}:
            continue  # settled with an earlier item of its group
        try:
            item = access.item_for_moderator(request.user, item_uuid)
            decided += decisions.record_decision(request.user, item, decision, reason)
        except (claims.ClaimConflict, MediaItem.DoesNotExist) as exc:
            if len(uuids) == 1:
                raise  # one item: its own status (409 or 404)
            conflicts.append({"id": str(item_uuid), "detail": str(exc) or "No such item."})
    status = 409 if conflicts and not decided else 200
    verb = "Approved" if decision == Decision.Verdict.APPROVE else "Rejected"
    message = f"{verb} {len(decided)} item(s)." if decided else conflicts[0]["detail"]
    if wants_json(request):
        body = {
            "decided": [str(d.item.uuid) for d in decided],
            "conflicts": conflicts,
            "detail": message,
        }
        if status == 409:
            body = error_body(claims.ClaimConflict.code, message, **body)
        return JsonResponse(body, status=status)
    if status == 409:
        return _refuse(request, claims.ClaimConflict(message))
    messages.success(request, message)
    for c in conflicts:
        messages.error(request, c["detail"])
    return redirect("review:queue")


def _uuids(values) -> list[UUID]:
    try:
        return [UUID(str(v)) for v in values]
    except ValueError:
        raise ValidationError("Unknown item id.") from None


@require_GET
@moderator_view
def dashboard(request):
    """The queue's health for moderators and policy admins (review.health); the
    per-moderator table for those who may change the policy only."""
    range_name = request.GET.get("range") or health.DEFAULT_RANGE
    if range_name not in health.RANGES:
        raise ValidationError(f"The range is one of {', '.join(health.RANGES)}.")
    context = health.dashboard(
        range_name, with_moderators=request.user.has_perm("review.change_policy")
    )
    return render(request, "review/dashboard.html", context)


@require_GET
@moderator_view
def item_history(request, item_uuid):
    """An item with everything that happened to it: analyses, queue, decisions, strikes."""
    item = access.item_for_moderator(request.user, item_uuid)
    return render(request, "review/item.html", _history_context(item))


@require_POST
@moderator_view
def override(request, item_uuid):
    item = access.item_for_moderator(request.user, item_uuid)
    reason = decisions.compose_reason(request.POST.get("reason_choice"), request.POST.get("reason"))
    try:
        decisions.override_decision(request.user, item, request.POST.get("decision"), reason)
    except (claims.ClaimConflict, ValidationError) as exc:
        return _refuse_on_item(request, item, exc)
    messages.success(request, "The decision was reversed; the earlier one stays on record.")
    return redirect("review:item", item_uuid=item.uuid)


@require_POST
@moderator_view
def add_to_bank(request, item_uuid):
    """ "Add to bank" on a rejected item: its original is hashed into a chosen bank."""
    item = access.item_for_moderator(request.user, item_uuid)
    if not request.user.has_perm("hashing.add_bankentry"):
        raise PermissionDenied("Only policy admins can add items to hash banks.")
    if item.status != MediaItem.Status.REJECTED:
        refusal = Invalid("Only a rejected item can be added to a bank.")
        return _refuse_on_item(request, item, refusal)
    form = AddToBankForm(request.POST)
    if not form.is_valid():
        return _refuse_on_item(request, item, Invalid("Choose a bank (and an optional note)."))
    bank = form.cleaned_data["bank"]
    try:
        bank_services.add_item_to_bank(
            item, bank, actor=request.user, note=form.cleaned_data["note"]
        )
    except bank_services.BankError as exc:
        return _refuse_on_item(request, item, exc)
    messages.success(request, f"Added to the bank “{bank.name}”: copies of it are now matched.")
    return redirect("review:item", item_uuid=item.uuid)


def _refuse_on_item(request, item, exc: Exception):
    if wants_json(request):
        return error_response(exc)
    status, body = describe(exc)
    messages.error(request, body["detail"])
    return render(request, "review/item.html", _history_context(item), status=status)


def _history_context(item) -> dict:
    analyses = list(item.analyses.all()[:20])
    return {
        "item": item,
        "banks": Bank.objects.filter(active=True).order_by("kind", "name"),
        "in_banks": BankContent.objects.filter(source_item=item).select_related("bank"),
        "analyses": analyses,
        # What matched: bank reference, past items, each voter; pictures side by side.
        "evidence": evidence_for(item, analyses[0] if analyses else None),
        "can_see_original": True,
        "source_url": item.source_url,  # moderators only here: in full
        "policy": Policy.current(),
        "max_reason": decisions.MAX_REASON,
    }
