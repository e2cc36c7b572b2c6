"""Tokens and secrets sealed at rest: Fernet (AES-128-CBC and HMAC-SHA256, from
``cryptography``) with the keys of ``SLACK_ENCRYPTION_KEY``.

Several keys rotate: the first seals, every one opens (``MultiFernet``); ``manage.py
reseal_slack_secrets`` seals every stored value again with the first. Without a key of its
own the site derives one from ``SECRET_KEY`` (SHA-256 of a fixed label and the key), so a
database copied without the settings holds nothing usable; set a key of its own so that
rotating ``SECRET_KEY`` does not lose the workspaces' tokens.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "open_sealed", "seal"]


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.SLACK_ENCRYPTION_KEY if k.strip()]
    if not keys:
        digest = hashlib.sha256(b"chatbot.sealing:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def seal(value: str) -> str:
    """The sealed text of ``value``; the empty string stays empty (nothing is set)."""
    if not value:
        return ""
    return _fernet().encrypt(value.encode()).decode()


def open_sealed(sealed: str) -> str:
    """The value; raises InvalidToken when no configured key opens it."""
    if not sealed:
        return ""
    return _fernet().decrypt(sealed.encode()).decode()


def reseal(sealed: str) -> str:
    """Sealed again with the first key (after a rotation)."""
    if not sealed:
        return ""
    return _fernet().rotate(sealed.encode()).decode()
