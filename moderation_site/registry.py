"""The registry every axis uses: named plug-ins (hash algorithms, media kinds), one per name.

A plain dict keyed by ``name``, plus registering for the length of a block (tests,
experiments). Part of the base layer: it imports nothing of the apps.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    def register(self, item: T) -> T:
        self[item.name] = item
        return item

    def unregister(self, name: str) -> None:
        self.pop(name, None)

    @contextmanager
    def registered(self, item: T) -> Iterator[T]:
        """Known for the duration of a block, then forgotten (one it stood in for, e.g.
        a test's toy text kind in place of the real one, is put back)."""
        before = self.get(item.name)
        self.register(item)
        try:
            yield item
        finally:
            self.unregister(item.name)
            if before is not None:
                self.register(before)
