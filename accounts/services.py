"""Authors, strikes and bans: shared by uploads, review, the API and the Slack bot."""

from django.contrib.auth import SESSION_KEY
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from .models import AccountEvent, Author, Strike
from .sessions import end_access

# Shown at log-in, on the next request of a banned session and to API clients.
BANNED_MESSAGE = "Your account is banned. Contact the moderators to appeal."


def author_for_user(user) -> Author:
    """The Author record of a site user, created on first use."""
    author = getattr(user, "author", None) if user.pk else None
    if author is not None:
        return author
    author, _ = Author.objects.get_or_create(
        kind=Author.Kind.SITE,
        external_id=str(user.pk),
        defaults={"user": user, "display_name": user.get_username()},
    )
    return author


def author_for_external(kind: str, external_id: str, display_name: str = "") -> Author:
    """The Author behind an API client's end user or a Slack user."""
    author, _ = Author.objects.get_or_create(
        kind=kind, external_id=external_id[:255], defaults={"display_name": display_name[:255]}
    )
    return author


def is_user_banned(user) -> bool:
    return Author.objects.filter(user_id=user.pk, status=Author.Status.BANNED).exists()


def may_stay_connected(user, session=None) -> bool:
    """A websocket's user may connect (and stay): signed in, active, not banned, and the
    browser session it came with still signs them in (a log-out racing the connect)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if is_user_banned(user):
        return False
    key = getattr(session, "session_key", None)
    if session is None or key is None:
        return True
    fresh = session.__class__(session_key=key)  # read again: the scope's copy is cached
    return str(fresh.get(SESSION_KEY)) == str(user.pk)


def add_strike(
    author: Author, *, source: str, reason: str, strikes_to_ban: int, item=None, actor=None
) -> Strike:
    """Count a violation; warn below `strikes_to_ban` (the policy's), ban at it. Locked
    against races."""
    with transaction.atomic():
        locked = Author.objects.select_for_update().get(pk=author.pk)
        locked.strikes += 1
        if locked.strikes >= strikes_to_ban:
            new_status = Author.Status.BANNED
        else:
            new_status = Author.Status.WARNED
        was_banned = locked.status == Author.Status.BANNED
        locked.status = new_status
        fields = ["strikes", "status"]
        if new_status == Author.Status.BANNED and not was_banned:
            locked.banned_at = timezone.now()
            fields.append("banned_at")
        locked.save(update_fields=fields)
        strike = Strike.objects.create(
            author=locked,
            item=item,
            source=source,
            reason=reason[:255],
            resulting_status=new_status,
            created_by=actor,
        )
        if new_status == Author.Status.BANNED and not was_banned:
            _end_access(locked)
            AccountEvent.objects.create(
                author=locked,
                action="banned",
                actor=actor,
                detail=f"Banned after {locked.strikes} strikes (last: {reason}).",
            )
    author.strikes, author.status = locked.strikes, locked.status
    return strike


def strike_notice(strike: Strike, strikes_to_ban: int) -> str:
    """What the author is told after a strike."""
    limit = strikes_to_ban
    count = strike.author.strikes
    if strike.resulting_status == Author.Status.BANNED:
        return f"Your account is now banned ({count} strikes)."
    return f"Warning: strike {count} of {limit}; at {limit} the account is banned."


def lift_ban(author: Author, *, actor, note: str = "") -> Author:
    """An admin lifts a ban: status back to warned, strikes reset, audited."""
    with transaction.atomic():
        locked = Author.objects.select_for_update().get(pk=author.pk)
        locked.status = Author.Status.OK
        locked.strikes = 0
        locked.banned_at = None
        locked.save(update_fields=["status", "strikes", "banned_at"])
        AccountEvent.objects.create(
            author=locked, action="ban_lifted", actor=actor, detail=note or "Ban lifted."
        )
    return locked


def _end_access(author: Author) -> None:
    """Stop API tokens now; after commit, close the user's websockets and release their
    review claims (accounts.sessions.end_access); sessions end on their next request
    (EndBannedSessionsMiddleware) and a new log-in is refused (accounts.forms)."""
    if author.user_id:
        Token.objects.filter(user_id=author.user_id).delete()
        end_access(author.user_id, cause="banned")
