"""The roadmap "from need to operation": the decisions of an AI procurement and the steps they lead to.

The rules are data (kb/data/roadmap.yaml) so a lawyer can review each one on its own; this module
validates them and evaluates them for a scenario and the answers known so far. Conditions are read
with three values: a step whose condition depends on an unanswered question is kept and marked
open, so an unknown answer shows both branches. Cited references are resolved to passages of the
knowledge base where it holds them; a reference without a passage is still listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kb.errors import RoadmapInputError as RoadmapInputError  # re-exported
from kb.match import Match
from kb.references import is_reference, parse_reference
from kb.scenarios import Bilingual, scenario_label
from kb.vocabulary import SCENARIO_IDS

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

ROADMAP_FILE = Path(__file__).resolve().parent / "data" / "roadmap.yaml"
UNKNOWN = "unknown"
SCENARIO_KEY = "scenario"  # conditions may test the scenario like an answer
CONTRACT_DOCS: frozenset[str] = frozenset({"mcc-ai-high-risk", "mcc-ai-non-high-risk", "erst-it-rammeaftale"})
Who = Literal["buyer", "vendor", "both"]


# --- the rules ---------------------------------------------------------------------------------

Condition = dict[str, list[str]]


def _as_condition(value: object) -> Condition:
    """`{key: value}` or `{key: [values]}` as `{key: [values]}`; YAML scalars must be strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("a condition is a mapping of question key to a value or a list of values")  # noqa: TRY004 - pydantic reports ValueError
    out: Condition = {}
    for key, wanted in value.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{key}: values must be strings (quote yes/no in YAML)")
        out[str(key)] = list(values)
    return out


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1)
    label: Bilingual

    @field_validator("value", mode="before")
    @classmethod
    def _string(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {value!r} (quote yes/no in YAML)")  # noqa: TRY004 - pydantic reports ValueError
        return value


class Derivation(BaseModel):
    """An answer the law already decides from other answers (e.g. a class IIa device is high-risk)."""

    model_config = ConfigDict(extra="forbid")

    when: Condition
    value: str

    @field_validator("when", mode="before")
    @classmethod
    def _condition(cls, value: object) -> Condition:
        return _as_condition(value)


class Question(BaseModel):
    """One decision of the procurement, with its options and the provisions behind it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: Bilingual
    help: Bilingual
    refs: list[str] = Field(default_factory=list)
    options: list[Option] = Field(min_length=2)
    ask_when: Condition = Field(default_factory=dict)
    derive: list[Derivation] = Field(default_factory=list)

    @field_validator("ask_when", mode="before")
    @classmethod
    def _condition(cls, value: object) -> Condition:
        return _as_condition(value)

    @field_validator("refs")
    @classmethod
    def _valid_refs(cls, refs: list[str]) -> list[str]:
        for index, ref in enumerate(refs):
            if not is_reference(ref):
                raise ValueError(f"[{index}] not a reference: {ref!r}")
        return refs

    @property
    def values(self) -> list[str]:
        return [option.value for option in self.options]


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: Bilingual


class Step(BaseModel):
    """One small rule: when it applies, what to do, who does it, why (refs) and which clauses to agree."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    phase: str
    who: Who
    when: Condition = Field(default_factory=dict)
    title: Bilingual
    what: Bilingual
    refs: list[str] = Field(default_factory=list)
    clauses: list[str] = Field(default_factory=list)

    @field_validator("when", mode="before")
    @classmethod
    def _condition(cls, value: object) -> Condition:
        return _as_condition(value)

    @field_validator("refs")
    @classmethod
    def _valid_refs(cls, refs: list[str]) -> list[str]:
        for index, ref in enumerate(refs):
            if not is_reference(ref):
                raise ValueError(f"[{index}] not a reference: {ref!r}")
            if parse_reference(ref).doc_id in CONTRACT_DOCS:
                raise ValueError(f"[{index}] {ref} is a contract clause: list it under clauses")
        return refs

    @field_validator("clauses")
    @classmethod
    def _valid_clauses(cls, clauses: list[str]) -> list[str]:
        for index, ref in enumerate(clauses):
            if not is_reference(ref):
                raise ValueError(f"[{index}] not a reference: {ref!r}")
            if parse_reference(ref).doc_id not in CONTRACT_DOCS:
                raise ValueError(f"[{index}] {ref} is not in a contract document ({', '.join(sorted(CONTRACT_DOCS))})")
        return clauses

    @model_validator(mode="after")
    def _cites_something(self) -> Step:
        if not self.refs and not self.clauses:
            raise ValueError("a step must cite at least one provision (refs) or clause (clauses)")
        return self


class Rules(BaseModel):
    """The whole rule set, checked for consistency: every key, value and phase a rule names exists."""

    model_config = ConfigDict(extra="forbid")

    questions: list[Question] = Field(min_length=1)
    defaults: dict[str, dict[str, str]] = Field(default_factory=dict)
    phases: list[Phase] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)

    def question(self, key: str) -> Question:
        for question in self.questions:
            if question.key == key:
                return question
        raise KeyError(key)

    @property
    def keys(self) -> list[str]:
        return [q.key for q in self.questions]

    def all_refs(self) -> set[str]:
        """Every reference the rules cite (questions, step refs and clauses)."""
        refs = {ref for q in self.questions for ref in q.refs}
        for step in self.steps:
            refs.update(step.refs)
            refs.update(step.clauses)
        return refs


def _check_condition(condition: Condition, values: dict[str, list[str]], where: str) -> list[str]:
    problems = []
    for key, wanted in condition.items():
        if key not in values:
            problems.append(f"{where}: unknown question key {key!r}; valid: {', '.join(values)}")
            continue
        for value in wanted:
            if value not in values[key]:
                problems.append(f"{where}.{key}: unknown value {value!r}; valid: {', '.join(values[key])}")
    return problems


def _check_consistency(rules: Rules) -> list[str]:
    """Cross-references inside the rules, each problem naming the rule and field at fault."""
    values: dict[str, list[str]] = {SCENARIO_KEY: list(SCENARIO_IDS)}
    problems: list[str] = []
    for question in rules.questions:
        if question.key in values:
            problems.append(f"question {question.key}: key: duplicate question key")
        values[question.key] = question.values
        if len(set(question.values)) != len(question.values) or UNKNOWN in question.values:
            problems.append(f"question {question.key}: options: values must be unique and not {UNKNOWN!r}")
    for question in rules.questions:
        problems += _check_condition(question.ask_when, values, f"question {question.key}: ask_when")
        for index, derivation in enumerate(question.derive):
            problems += _check_condition(derivation.when, values, f"question {question.key}: derive.{index}.when")
            if derivation.value not in question.values:
                problems.append(f"question {question.key}: derive.{index}.value: unknown value {derivation.value!r}")
    for scenario, defaults in rules.defaults.items():
        if scenario not in SCENARIO_IDS:
            problems.append(f"defaults.{scenario}: unknown scenario; valid: {', '.join(SCENARIO_IDS)}")
        problems += _check_condition({k: [v] for k, v in defaults.items()}, values, f"defaults.{scenario}")
    phase_ids = [phase.id for phase in rules.phases]
    if len(set(phase_ids)) != len(phase_ids):
        problems.append("phases: duplicate phase id")
    seen: set[str] = set()
    for step in rules.steps:
        if step.id in seen:
            problems.append(f"step {step.id}: id: duplicate step id")
        seen.add(step.id)
        if step.phase not in phase_ids:
            problems.append(f"step {step.id}: phase: unknown phase {step.phase!r}; valid: {', '.join(phase_ids)}")
        problems += _check_condition(step.when, values, f"step {step.id}: when")
    return problems


def _rule_name(data: dict[str, Any], loc: tuple[int | str, ...]) -> tuple[str, str]:
    """'step eu-procedure' and the field path inside it, from a pydantic error location."""
    if len(loc) >= 2 and loc[0] in ("questions", "phases", "steps") and isinstance(loc[1], int):
        kind = {"questions": "question", "phases": "phase", "steps": "step"}[str(loc[0])]
        items = data.get(str(loc[0])) or []
        raw = items[loc[1]] if loc[1] < len(items) else {}
        name = raw.get("key" if kind == "question" else "id") if isinstance(raw, dict) else None
        return f"{kind} {name or '#' + str(loc[1])}", ".".join(str(p) for p in loc[2:]) or "(rule)"
    return ".".join(str(p) for p in loc[:1]) or "(rules)", ".".join(str(p) for p in loc[1:]) or "(value)"


def parse_rules(data: object, source: str = "roadmap") -> Rules:
    """Validate raw YAML data; ValueError names the rule and the field that is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping with questions, defaults, phases and steps")  # noqa: TRY004 - one error type for bad rules
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            rule, field = _rule_name(data, tuple(error["loc"]))
            problems.append(f"{rule}: {field}: {str(error['msg']).removeprefix('Value error, ')}")
        raise ValueError(f"{source}: " + "; ".join(problems)) from exc
    problems = _check_consistency(rules)
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    return rules


@lru_cache(maxsize=4)
def load_rules(path: Path = ROADMAP_FILE) -> Rules:
    """The rules, read once (cached)."""
    return parse_rules(yaml.safe_load(Path(path).read_text(encoding="utf-8")), source=str(path))


# --- evaluation --------------------------------------------------------------------------------


def _holds(condition: Condition, facts: dict[str, str]) -> bool | None:
    """True, False, or None when it depends on an unanswered question (three-valued AND)."""
    result: bool | None = True
    for key, wanted in condition.items():
        value = facts.get(key, UNKNOWN)
        if value == UNKNOWN:
            result = None
        elif value not in wanted:
            return False
    return result


def check_input(scenario: str, answers: dict[str, str], rules: Rules | None = None) -> None:
    """RoadmapInputError (422 at the service) for an unknown scenario, question key or answer value."""
    rules = rules or load_rules()
    if scenario not in SCENARIO_IDS:
        raise RoadmapInputError(
            "scenario", scenario, list(SCENARIO_IDS), f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIO_IDS)}",
            "invalid_scenario",
        )
    for key, value in answers.items():
        if key not in rules.keys:
            raise RoadmapInputError(
                "answers", key, rules.keys, f"unknown question {key!r}; valid: {', '.join(rules.keys)}", "unknown_question"
            )
        valid = [*rules.question(key).values, UNKNOWN]
        if value not in valid:
            raise RoadmapInputError(
                f"answers.{key}", value, valid, f"unknown answer {value!r} to {key}; valid: {', '.join(valid)}", "invalid_answer"
            )


def effective_answers(scenario: str, answers: dict[str, str], rules: Rules | None = None) -> dict[str, dict[str, str]]:
    """Each known answer with where it comes from: the asker ('answer'), the scenario, or the law ('derived').

    The asker's answer wins; a derivation wins over a scenario default, since it is what the law says
    once the facts it rests on are known. An explicit 'unknown' stays unknown.
    """
    rules = rules or load_rules()
    facts: dict[str, dict[str, str]] = {}
    for key, value in rules.defaults.get(scenario, {}).items():
        facts[key] = {"value": value, "source": "scenario"}
    for key, value in answers.items():
        facts[key] = {"value": value, "source": "answer"}
    for _ in range(len(rules.questions)):  # derivations can build on each other; a few rounds settle them
        changed = False
        plain = {k: v["value"] for k, v in facts.items()}
        for question in rules.questions:
            if facts.get(question.key, {}).get("source") == "answer":
                continue
            for derivation in question.derive:
                if _holds(derivation.when, plain) is True and facts.get(question.key, {}).get("value") != derivation.value:
                    facts[question.key] = {"value": derivation.value, "source": "derived"}
                    changed = True
        if not changed:
            break
    return facts


def _text(value: Bilingual, language: str) -> str:
    return value.get(language)


def question_view(question: Question, language: str, facts: dict[str, str] | None = None) -> dict[str, Any]:
    """A question as the API shows it."""
    out: dict[str, Any] = {
        "key": question.key,
        "text": _text(question.text, language),
        "help": _text(question.help, language),
        "options": [{"value": o.value, "label": _text(o.label, language)} for o in question.options],
        "refs": list(question.refs),
        "ask_when": question.ask_when,
    }
    if facts is not None and question.key in facts:
        out["value"] = facts[question.key]
    return out


def pending_questions(rules: Rules, facts: dict[str, str]) -> list[Question]:
    """The questions still to ask, in order: unanswered, and relevant given what is known."""
    return [q for q in rules.questions if q.key not in facts and _holds(q.ask_when, facts) is True]


def questions_for(scenario: str, language: str = "da", rules: Rules | None = None) -> list[dict[str, Any]]:
    """Every question of the roadmap for a scenario, with the value the scenario already gives (if any)."""
    rules = rules or load_rules()
    check_input(scenario, {}, rules)
    facts = effective_answers(scenario, {}, rules)
    return [question_view(q, language, facts) for q in rules.questions]


def build_roadmap(
    scenario: str,
    answers: dict[str, str] | None = None,
    language: str = "da",
    kb: KnowledgeBase | None = None,
    rules: Rules | None = None,
) -> dict[str, Any]:
    """The next questions and the roadmap, phase by phase, for a scenario and the answers so far.

    A step applies when its condition holds; when it depends on an unanswered question it is
    included with `open: true` and `depends_on` naming those questions. With `kb`, every cited
    reference is resolved to a passage (null where the knowledge base holds none).
    """
    rules = rules or load_rules()
    answers = dict(answers or {})
    check_input(scenario, answers, rules)
    language = "en" if language == "en" else "da"
    sources = effective_answers(scenario, answers, rules)
    facts = {key: item["value"] for key, item in sources.items() if item["value"] != UNKNOWN}
    facts[SCENARIO_KEY] = scenario
    asked = set(answers) | {k for k, v in sources.items() if v["value"] != UNKNOWN}

    chosen: list[tuple[Step, bool]] = []
    for step in rules.steps:
        holds = _holds(step.when, facts)
        if holds is not False:
            chosen.append((step, holds is None))
    refs = {ref for step, _ in chosen for ref in (*step.refs, *step.clauses)}
    passages = resolve_references(kb, refs, language) if kb is not None else {}

    def cite(ref: str) -> dict[str, Any]:
        found = passages.get(ref)
        parsed = parse_reference(ref)
        return {
            "ref": ref,
            "doc_id": parsed.doc_id,
            "passage_id": found["passage_id"] if found else None,
            "title": found["title"] if found else None,
            "heading": found["heading"] if found else None,
            "language": found["language"] if found else None,
        }

    phases = []
    for phase in rules.phases:
        steps = []
        for step, is_open in chosen:
            if step.phase != phase.id:
                continue
            steps.append(
                {
                    "id": step.id,
                    "title": _text(step.title, language),
                    "what": _text(step.what, language),
                    "who": step.who,
                    "refs": [cite(ref) for ref in step.refs],
                    "clauses": [cite(ref) for ref in step.clauses],
                    "open": is_open,
                    "depends_on": [k for k in step.when if k not in facts] if is_open else [],
                    "when": step.when,
                }
            )
        phases.append({"id": phase.id, "title": _text(phase.title, language), "steps": steps})

    pending = [q for q in pending_questions(rules, facts) if q.key not in asked]
    return {
        "scenario": scenario,
        "scenario_label": scenario_label(scenario, language),
        "language": language,
        "answers": {key: sources[key] for key in rules.keys if key in sources},
        "questions": [question_view(q, language) for q in pending],
        "phases": phases,
    }


# --- references to passages --------------------------------------------------------------------


def resolve_references(kb: KnowledgeBase | None, refs: Iterable[str], language: str = "da") -> dict[str, dict[str, Any]]:
    """The first passage (document order) of each reference, preferring `language`; one store query for all.

    Best effort: a knowledge base that is not built, or holds only part of the corpus, gives no passage
    for some references, and those are simply missing from the result.
    """
    wanted = sorted(set(refs))
    if kb is None or not wanted or not kb.is_built():
        return {}
    # Most references are a passage's own ref or the ref of its first paragraph (`art-26` -> `art-26.1`,
    # `section-16` -> `section-16.0`): ask for those exactly, which is fast; a whole unit only for the rest.
    candidates = sorted({f"{ref}{suffix}" for ref in wanted for suffix in ("", ".0", ".1")})
    found = kb.store.find(Match(ref=tuple(candidates), in_force=True))
    out: dict[str, dict[str, Any]] = {}

    def pick(ref: str, passages: list[Any]) -> None:
        matches = [p for p in passages if p.ref == ref or p.ref.startswith(ref + ".")]
        if matches:
            best = min(matches, key=lambda p: (p.language != language, p.ref != ref, p.order, p.piece))
            out[ref] = {"passage_id": best.passage_id, "title": best.title, "heading": best.heading, "language": best.language}

    for ref in wanted:
        pick(ref, found)
    rest = [ref for ref in wanted if ref not in out]
    if rest:
        units = sorted({parse_reference(ref).locator.split(".")[0] for ref in rest})
        docs = sorted({parse_reference(ref).doc_id for ref in rest})
        more = kb.store.find(Match(doc_id=tuple(docs), unit=tuple(units), in_force=True))
        for ref in rest:
            pick(ref, more)
    return out
