"""The evaluation splits: `tune` decides changes, `test` is locked and only reported.

The former dev set (258 questions) was split once, deterministically: within each
stratum (language x answerable) its questions are ordered by the SHA-256 of their
id and the first round(TUNE_SHARE x stratum size) go to tune.jsonl (99), the rest
to test.jsonl (159). `split()` is that rule; tests/test_datasets.py re-derives it
from the two files, so a question cannot move between them unnoticed.

Why a hash of the id and not a random draw: anyone can recompute it, and it does
not depend on the order of the file or on a seed.

Fresh questions written for the test set after the split (ids outside the
former dev range, `FORMER_DEV_ID`) are added to test.jsonl only.

Locked means: nothing is fitted, calibrated, tuned or thresholded on test.jsonl.
`refuse_locked()` is called by every fitting tool in eval/ (eval.calibrate) and
tests/test_datasets.py checks that no code outside the evaluation itself names the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kb.errors import LockedDatasetError as LockedDatasetError  # re-exported

DATASETS = Path(__file__).resolve().parent / "datasets"
TUNE = DATASETS / "tune.jsonl"
TEST = DATASETS / "test.jsonl"
CALIBRATION = DATASETS / "calibration.jsonl"
SMOKE = DATASETS / "smoke.jsonl"
TUNE_SHARE = 100 / 258  # about 100 of the former dev set's 258 questions
FORMER_DEV_ID = re.compile(r"^q-\d{3}$")

T = TypeVar("T")


def split_key(question_id: str) -> str:
    """The order within a stratum: the SHA-256 of the id (hex)."""
    return hashlib.sha256(question_id.encode("utf-8")).hexdigest()


def split(questions: Sequence[T], key: Any = None) -> tuple[list[T], list[T]]:
    """(tune, test) of `questions` (dicts or EvalQuestion), stratified by (language, answerable), file order kept."""

    def get(q: Any, name: str) -> Any:
        return q[name] if isinstance(q, dict) else getattr(q, name)

    strata: dict[tuple[str, bool], list[T]] = {}
    for q in questions:
        strata.setdefault((get(q, "language"), bool(get(q, "answerable"))), []).append(q)
    tune_ids: set[str] = set()
    for members in strata.values():
        ordered = sorted(members, key=lambda q: split_key(get(q, "id")))
        tune_ids.update(get(q, "id") for q in ordered[: round(TUNE_SHARE * len(members))])
    tune = [q for q in questions if get(q, "id") in tune_ids]
    test = [q for q in questions if get(q, "id") not in tune_ids]
    return tune, test


def normalise_question(text: str) -> str:
    """Question text for overlap checks: case-folded, whitespace collapsed, trailing punctuation dropped."""
    return re.sub(r"\s+", " ", text).strip().casefold().rstrip(" ?.!")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def locked_questions() -> list[dict[str, Any]]:
    return read_jsonl(TEST)


def refuse_locked(path: Path, questions: Iterable[Any] | None = None) -> None:
    """Raise LockedDatasetError when `path` is the test set or its questions overlap it (by id or text).

    Every tool that fits something on a dataset (the abstention model, a threshold, a ranker) calls this first.
    """
    if Path(path).resolve() == TEST.resolve():
        raise LockedDatasetError(f"{path}: the locked test set is never fitted on (eval/splits.py)")
    if questions is None:
        return
    locked = locked_questions()
    ids = {q["id"] for q in locked}
    texts = {normalise_question(q["question"]) for q in locked}
    for q in questions:
        qid = q["id"] if isinstance(q, dict) else q.id
        text = q["question"] if isinstance(q, dict) else q.question
        if qid in ids or normalise_question(text) in texts:
            raise LockedDatasetError(f"{path}: question {qid!r} is in the locked test set (eval/datasets/test.jsonl)")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
