"""Clients, keys and their end users: made and revoked here, whoever asks (admin, tests,
a management command)."""

import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Author

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
    return bool(
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )


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
