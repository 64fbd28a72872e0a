"""Directive 2014/24/EU and udbudsloven, article by §: which § implements which directive article, both ways.

The links are kept as data (kb/data/transpositions.yaml), each saying where it comes from (udbudsloven's own § 55
or a shared subject), and are checked against both texts by tests/test_versions.py.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kb.references import covers

DATA = Path(__file__).resolve().parent / "data" / "transpositions.yaml"


@lru_cache(maxsize=1)
def links() -> tuple[dict[str, Any], ...]:
    """Every link: {directive, heading, act: [§ refs], source, says}."""
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return tuple(data["links"])


def _unit(ref: str) -> str:
    return ref.split(".")[0]


def implemented_by(ref: str) -> list[str]:
    """The §§ of udbudsloven that implement the directive article `ref` (or the article `ref` lies in)."""
    return [a for link in links() if covers(link["directive"], _unit(ref)) or covers(ref, link["directive"]) for a in link["act"]]


def implements(ref: str) -> list[str]:
    """The directive articles the § `ref` (or the § it lies in) implements."""
    return [link["directive"] for link in links() if any(covers(a, _unit(ref)) or covers(ref, a) for a in link["act"])]


def transposition_view(ref: str) -> list[dict[str, Any]]:
    """What the clause view shows: each link of `ref` with the other side's references and where the link comes from."""
    out = []
    for link in links():
        if covers(link["directive"], _unit(ref)) or covers(ref, link["directive"]):
            out.append({"direction": "implemented_by", "refs": list(link["act"]), "source": link["source"], "says": link["says"]})
        elif any(covers(a, _unit(ref)) or covers(ref, a) for a in link["act"]):
            out.append({"direction": "implements", "refs": [link["directive"]], "source": link["source"], "says": link["says"]})
    return out
