"""Schemathesis hooks (SCHEMATHESIS_HOOKS) for tests/test_fuzz.py: text strategies that include lone surrogates.

Schemathesis never generates a lone surrogate (it cannot be encoded for the wire as UTF-8), but JSON carries one
as an escape (`"\\ud800"`), and a careless or hostile client sends it. Every JSON body is drawn either as
generated or with a lone surrogate put into each of its strings; the API must answer 422, never 500.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@st.composite
def _with_surrogates(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, str):
        at = draw(st.integers(0, len(value)))
        return value[:at] + draw(st.text(SURROGATES, min_size=1, max_size=3)) + value[at:]
    if isinstance(value, dict):
        return {draw(_with_surrogates(k)) if draw(st.booleans()) else k: draw(_with_surrogates(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [draw(_with_surrogates(item)) for item in value]
    return value


def _takes_json_only(context: Any) -> bool:
    operation = getattr(context, "operation", None)
    media_types = [alternative.media_type for alternative in getattr(operation, "body", [])]
    return bool(media_types) and all(m == "application/json" for m in media_types)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    # a multipart form cannot carry one (the client cannot encode it): uploads go as generated
    if not isinstance(body, dict) or not _takes_json_only(context):
        return st.just(body)
    return st.one_of(st.just(body), _with_surrogates(body))
