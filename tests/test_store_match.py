"""A `Match` says in the domain's words which passages a store call is about; only kb/store.py turns it into
Chroma's `where` dialect. These are the filters the callers wrote by hand before."""

from __future__ import annotations

from kb.match import Match
from kb.store import _where


def test_no_match_is_no_filter() -> None:
    assert _where(None) is None and _where(Match()) is None


def test_one_condition_stands_alone() -> None:
    assert _where(Match(unit="art-26")) == {"unit": "art-26"}
    assert _where(Match(ref=("a", "b"))) == {"ref": {"$in": ["a", "b"]}}
    assert _where(Match(in_force=True)) == {"in_force": True}


def test_several_conditions_are_anded() -> None:
    assert _where(Match(doc_id="mine", origin="upload")) == {"$and": [{"doc_id": "mine"}, {"origin": "upload"}]}
    assert _where(Match(origin="corpus", not_text_key=("a/da/v1",))) == {
        "$and": [{"origin": "corpus"}, {"text_key": {"$nin": ["a/da/v1"]}}]
    }
    assert _where(Match(ref="gdpr:art-5", not_language="da")) == {"$and": [{"ref": "gdpr:art-5"}, {"language": {"$ne": "da"}}]}
    assert _where(Match(text_key="t", order_from=3, order_to=5)) == {
        "$and": [{"text_key": "t"}, {"order": {"$gte": 3}}, {"order": {"$lte": 5}}]
    }
    assert _where(Match(in_force=True, citing=True)) == {"$and": [{"in_force": True}, {"cites": {"$ne": ""}}]}
    assert _where(Match(not_doc_id="own", kind=("act",), in_force=True)) == {
        "$and": [{"doc_id": {"$ne": "own"}}, {"kind": {"$in": ["act"]}}, {"in_force": True}]
    }


def test_the_store_adds_its_own_conditions_first() -> None:
    assert _where(Match(origin="corpus"), {"pending": True}) == {"$and": [{"pending": True}, {"origin": "corpus"}]}
    assert _where(None, {"pending": True}) == {"pending": True}


def test_zero_and_false_are_conditions() -> None:
    assert _where(Match(order_from=0)) == {"order": {"$gte": 0}}
    assert _where(Match(in_force=False)) == {"in_force": False}
