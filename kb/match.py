"""Which stored passages a call is about, said in the domain's words (doc id, origin, text key, ref, unit, kind,
language, in force, document order).

The store (kb/store.py) is the one place that turns a Match into Chroma's `where` dialect; everything else says
what it wants with a Match. Its own module, with no imports of the project, so any part of kb/ can use it
without importing the store.
"""

from __future__ import annotations

from dataclasses import dataclass

Values = str | tuple[str, ...]  # one value, or any of several


@dataclass(frozen=True)
class Match:
    """Which stored passages a call is about, in the domain's words; a field left None matches every passage.

    A tuple matches any of its values; `not_` fields match every passage but the given value(s).
    """

    doc_id: Values | None = None
    not_doc_id: str | None = None
    origin: str | None = None  # "corpus" or "upload"
    text_key: str | None = None
    not_text_key: tuple[str, ...] | None = None
    ref: Values | None = None
    unit: Values | None = None
    kind: Values | None = None
    language: str | None = None
    not_language: str | None = None
    in_force: bool | None = None
    order_from: int | None = None  # document order, inclusive
    order_to: int | None = None
    citing: bool = False  # only passages that cite another provision
