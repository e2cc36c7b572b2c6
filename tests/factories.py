"""Test data builders (factory-boy): users with roles, and items in any state.

Items are made directly, without the intake or a classifier, for tests about what happens
after the analysis (the review queue, decisions, pages). Tests of the intake and the
pipeline upload real files instead.
"""

import hashlib
import uuid

import factory
from django.contrib.auth.models import Group
from factory.django import DjangoModelFactory

from accounts.models import User
from accounts.services import author_for_user
from uploads.models import MediaItem


class UserFactory(DjangoModelFactory):
    """A site user with the password "pw-<username>", its roles and its Author record."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs.setdefault("password", f"pw-{kwargs['username']}")
        return model_class.objects.create_user(*args, **kwargs)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or ():
            self.groups.add(Group.objects.get_or_create(name=name)[0])
        if create:
            author_for_user(self)


class MediaItemFactory(DjangoModelFactory):
    """An image item; its file is a name only unless the test stores bytes itself."""

    class Meta:
        model = MediaItem

    uuid = factory.LazyFunction(uuid.uuid4)
    kind = "image"
    original_name = "photo.jpg"
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.uuid.bytes).hexdigest())
    mime = "image/jpeg"
    width = 64
    height = 48
    size = 1
    source = MediaItem.Source.WEB
    file = factory.LazyAttribute(lambda o: f"fake/{o.uuid.hex}.jpg")
    author = factory.LazyAttribute(lambda o: author_for_user(o.uploader) if o.uploader else None)
    uploader = None
