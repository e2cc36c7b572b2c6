"""Personas and shared fixtures. Real database (PostgreSQL when DATABASE_URL is set)."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from accounts.roles import MODERATOR, POLICY_ADMIN, UPLOADER
from tests.factories import UserFactory

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO / "tests" / "fixtures"
VENUS = TESTDATA / "venus-of-urbino-titian.jpg"


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Each test writes originals to its own private folder (Django resets the storages)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "uploads.storage.PrivateFileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private")},
        },
    }


@pytest.fixture(autouse=True)
def _fresh_item_index():
    """The per-process duplicate index must not carry items of other tests' databases."""
    from hashing.duplicates import item_index
    from hashing.video import past_videos

    item_index.reset()
    past_videos.reset()
    yield
    item_index.reset()
    past_videos.reset()


@pytest.fixture(autouse=True)
def _fresh_bank_version():
    """A process reuses a bank version read for 50 ms; each test's database has its own."""
    from hashing.models import BankVersion

    BankVersion.forget_read()
    yield
    BankVersion.forget_read()


@pytest.fixture(autouse=True)
def _fresh_claim_settings():
    """Claims cache the policy's numbers per process; each test's database has its own."""
    from review.claims import forget_claim_settings

    forget_claim_settings()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Full-strength hashing costs ~0.7 s per persona; tests do not need it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_tasks():
    """Tasks run in-process unless a test starts a real worker."""
    from moderation_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def _user(django_user_model, username, groups=(), **extra):
    return UserFactory(username=username, roles=groups, **extra)


@pytest.fixture
def uploader(db, django_user_model):
    return _user(django_user_model, "uploader", [UPLOADER])


@pytest.fixture
def moderator(db, django_user_model):
    return _user(django_user_model, "moderator", [MODERATOR, UPLOADER])


@pytest.fixture
def policy_admin(db, django_user_model):
    return _user(django_user_model, "policyadmin", [POLICY_ADMIN, MODERATOR], is_staff=True)


@pytest.fixture
def outsider(db, django_user_model):
    """Signed in, but no role and no items of their own."""
    return _user(django_user_model, "outsider")


@pytest.fixture
def policy(db):
    from review.models import Policy

    return Policy.current()


def encode(image: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def photo():
    """Real photographs shipped with scikit-image, as PIL images."""
    from skimage import data

    def get(name: str) -> Image.Image:
        return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")

    return get


@pytest.fixture
def jpeg(photo):
    """JPEG bytes of a named scikit-image photo, optionally resized."""

    def make(name: str = "coffee", size=None, quality: int = 90) -> bytes:
        img = photo(name)
        if size:
            img = img.resize(size)
        return encode(img, "JPEG", quality=quality)

    return make


@pytest.fixture
def venus_bytes() -> bytes:
    return VENUS.read_bytes()


def pytest_collection_modifyitems(config, items):
    """Tests marked postgres, redis or browser skip, saying why, when that service is missing."""
    from tests.markers import skip_missing_services

    skip_missing_services(items)
