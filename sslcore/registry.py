"""A small, explicit name -> object registry with clear errors.

Registries are filled by decorators at import time (``@DATASETS.register(...)``), never by
scanning ``module.__dict__``; an unknown name raises :class:`UnknownNameError` listing what exists.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a name that is not in a registry; the message names the allowed values."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with its one-line description."""

    name: str
    description: str
    obj: T


class Registry(Generic[T]):
    """Maps names to objects; ``kind`` ('dataset', 'task', ...) is used in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``; registering a name twice is a bug."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, description, obj)
            return obj

        return decorator

    def replace(self, name: str, description: str, obj: T) -> None:
        """Register ``obj`` as ``name`` whether or not the name exists, in one step (for entries that change at
        run time: a reader in another thread sees the old entry or the new one, never none)."""
        self._entries[name] = Entry(name, description, obj)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (for entries that come and go at run time, like the user's own datasets)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            allowed = ", ".join(sorted(self._entries)) or "(none registered)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of: {allowed}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))
