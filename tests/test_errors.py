"""One tree of errors: every error the project raises on purpose is a `KBError` with a stable code, and the API
answers each code with the status of the one table (service/errors.py)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import eval.dataset  # noqa: F401 - every module that defines or re-exports an error, so the tree below is whole
import eval.splits  # noqa: F401
import ingest.manifest  # noqa: F401
import ingest.splitter  # noqa: F401
import ingest.uploads.errors  # noqa: F401
import ingest.units  # noqa: F401
import kb.abstention  # noqa: F401
import kb.ranker  # noqa: F401
import kb.roadmap  # noqa: F401
from ingest.uploads.errors import CODES, UploadError
from kb.errors import (
    InvalidFilterError,
    KBError,
    NotCalibratedError,
    ParseError,
    RoadmapInputError,
    StoreUnavailableError,
)
from service.errors import STATUS, translate

REPO = Path(__file__).resolve().parent.parent
BUILT_IN = {"Exception", "BaseException", "ValueError", "RuntimeError", "KeyError", "TypeError", "OSError", "LookupError"}
# exceptions that are not errors the knowledge base reports: control flow inside one module
NOT_ERRORS = {
    ("service/errors.py", "AnsweredOutside"),  # a middleware outside the app answers (the body limit's 413)
    ("ingest/uploads/service.py", "_Cancelled"),  # a removal overtook an upload's ingest
}


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_no_error_is_defined_outside_the_tree() -> None:
    outside = []
    for path in sorted(p for top in ("ingest", "kb", "service", "eval") for p in (REPO / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # a class whose bases are all built-in exceptions roots a tree of its own (KBError, ValueError is fine)
            names = [b.id for b in node.bases if isinstance(b, ast.Name)] if isinstance(node, ast.ClassDef) else []
            if names and all(name in BUILT_IN for name in names):
                where = (str(path.relative_to(REPO)), node.name)
                if where not in NOT_ERRORS and node.name != "KBError":
                    outside.append(f"{where[0]}:{node.lineno} {node.name}")
    assert not outside, f"errors outside the KBError tree (kb/errors.py): {outside}"


def test_every_error_has_its_own_code_and_a_status() -> None:
    classes = _subclasses(KBError)
    fixed = {c: c.__dict__["code"] for c in classes if "code" in c.__dict__}  # set by the class, not per instance
    per_instance = {c for c in classes if c not in fixed}
    assert per_instance <= {InvalidFilterError, RoadmapInputError, UploadError}, per_instance - {InvalidFilterError}
    assert len(set(fixed.values())) == len(fixed), fixed  # no two errors share a code
    assert not [code for code in fixed.values() if code not in STATUS], "codes with no status in service/errors.py"
    assert set(CODES) <= set(STATUS)


def test_each_error_is_answered_with_its_code_status_and_field() -> None:
    def body(exc: KBError) -> tuple[int, dict[str, object]]:
        response = translate(exc)
        return response.status_code, json.loads(response.body)["error"]

    status, error = body(RoadmapInputError("answers", "colour", ["high_risk"], "unknown question 'colour'", "unknown_question"))
    assert status == 422 and error == {
        "status": 422, "code": "unknown_question", "message": "unknown question 'colour'", "field": "answers", "valid": ["high_risk"]
    }  # fmt: skip
    assert body(InvalidFilterError("doc", "nope", ["gdpr"]))[1]["code"] == "invalid_doc"
    assert body(NotCalibratedError("no model"))[0] == 503
    assert body(ParseError("x.pdf", "not a PDF", line=3)) == (
        422, {"status": 422, "code": "parse_error", "message": "x.pdf:3: not a PDF"}
    )  # fmt: skip
    response = translate(StoreUnavailableError("http://chroma:8000", "timed out"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert isinstance(UploadError("empty_file", "empty"), KBError)
