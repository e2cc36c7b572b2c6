"""Clients, keys and their end users: made and revoked here, whoever asks (admin, tests,
a management command)."""

import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Author
from review.models import Policy

from .authentication import forget_keys
from .models import KEY_PREFIX, ApiClient, ApiKey


def create_client(name: str, *, scopes=(), **fields) -> ApiClient:
    """A client and its service user (no password: it can only act through keys)."""
    with transaction.atomic():
        user = get_user_model().objects.create(username=f"api:{name}"[:150])
        user.set_unusable_password()
        user.save(update_fields=["password"])
        client = ApiClient(name=name, scopes=list(scopes), user=user, **fields)
        client.full_clean(exclude=["user"])
        client.save()
    return client


def issue_key(client: ApiClient, name: str = "") -> tuple[ApiKey, str]:
    """A new key: returns the row and the key itself, which is never stored or shown again."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        client=client, name=name, prefix=raw[: len(KEY_PREFIX) + 6], digest=ApiKey.digest_of(raw)
    )
    return key, raw


def revoke_key(key: ApiKey) -> bool:
    """Revoke a key at once; False when it already was."""
    return bool(revoke_keys(ApiKey.objects.filter(pk=key.pk)))


def revoke_keys(keys) -> int:
    """Revoke the keys of a queryset that are not yet revoked; how many were. They stop at
    once in this process, within API_KEY_CACHE_S in the others (api.authentication)."""
    count = keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    forget_keys()
    return count


def client_policy(item) -> Policy | None:
    """The policy an API item is judged by (its client's, ApiClient.judging_policy), None
    for the site's; one query. Installed as the "api" policy source by api.apps."""
    return Policy.objects.filter(
        pk__in=ApiClient.objects.filter(submissions__item_id=item.pk).values("policy_id")
    ).first()


def author_for(client: ApiClient, user_uuid: str) -> Author:
    """The Author behind a client's user id, scoped to that client (two clients' "42" are
    two people), made on first sight; strikes and bans then apply to it."""
    external_id = f"{client.pk}:{user_uuid}"
    try:
        author, _ = Author.objects.get_or_create(
            kind=Author.Kind.API,
            external_id=external_id,
            defaults={"display_name": f"{client.name}: {user_uuid}"[:255]},
        )
    except IntegrityError:  # a concurrent first sight made it
        author = Author.objects.get(kind=Author.Kind.API, external_id=external_id)
    return author
