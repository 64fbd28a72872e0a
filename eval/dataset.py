"""Evaluation datasets in DESIGN's JSON Lines format, read strictly: a bad line names its file and line."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from kb.errors import DatasetError as DatasetError  # re-exported
from kb.references import is_reference
from kb.vocabulary import Language, ScenarioId


class EvalQuestion(BaseModel):
    """One question with its gold references and key facts."""

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    language: Language
    scenario: ScenarioId | None = None
    gold_refs: list[str] = Field(default_factory=list)
    key_facts: list[str] = Field(default_factory=list)
    answerable: bool = True

    @field_validator("gold_refs")
    @classmethod
    def _refs(cls, refs: list[str]) -> list[str]:
        bad = [r for r in refs if not is_reference(r)]
        if bad:
            raise ValueError(f"not references: {bad}")
        return refs


def load_dataset(path: Path) -> list[EvalQuestion]:
    """Every question of a JSON Lines file."""
    out: list[EvalQuestion] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such dataset") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(EvalQuestion.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "line"
            raise DatasetError(f"{path}:{number}: {field}: {err['msg']}") from None
    if not out:
        raise DatasetError(f"{path}: no questions")
    return out
