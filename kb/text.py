"""Text the engine can take: Unicode that encodes to UTF-8, which every string does except one with a lone surrogate.

JSON may carry a lone surrogate (`"\\ud800"`, or the bytes ED A0 80 that Python's JSON reader lets through), and so
may a command-line argument that was not valid UTF-8 (Python decodes argv with `surrogateescape`). Such a string
cannot be handed to the embedding engine, written to a UTF-8 log or sent back in a JSON answer. The faces check
their text fields with `unencodable_at` (service/schemas.py names the field in a 422), the core checks the question
(`check_text`), and the embedder replaces what still gets through (`encodable`), so no caller can crash it.
"""

from __future__ import annotations

import re

from kb.errors import UnencodableTextError

_SURROGATE = re.compile("[\ud800-\udfff]")


def unencodable_at(text: str) -> int | None:
    """The index of the first character UTF-8 cannot encode (a lone surrogate), or None."""
    found = _SURROGATE.search(text)
    return found.start() if found else None


def check_text(text: str, field: str) -> str:
    """`text` unchanged, or UnencodableTextError naming `field` and where the surrogate stands."""
    at = unencodable_at(text)
    if at is not None:
        raise UnencodableTextError(field, at, ord(text[at]))
    return text


def encodable(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, the replacement character (the same text each time)."""
    return _SURROGATE.sub("\ufffd", text)
