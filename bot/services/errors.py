"""A refusal carries the catalog key of its answer, so handlers can say it in any language."""

from __future__ import annotations


class Refused(Exception):
    """The action is not allowed or not possible; nothing was changed."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


class Key(str):
    """A value of a refusal that is itself a catalog key, said in the reader's language."""
