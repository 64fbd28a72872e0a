"""How a parser test checks a refusal: the one assertion every parser's bad-input tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from ingest.units import ParseError


def refused(read: Callable[[], Iterable[object]], path: Path, reason: str) -> ParseError:
    """The ParseError that reading (`read()`, consumed whole) stops with. It must name `path`, in its field and in
    its message, since that is what tells the operator which file to fix, and its reason must hold `reason`."""
    with pytest.raises(ParseError) as caught:
        list(read())
    assert caught.value.path == path
    assert str(path) in str(caught.value)
    assert reason in caught.value.reason
    return caught.value
