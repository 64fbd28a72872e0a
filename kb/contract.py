"""The contract draft for a scenario: the sections a contract needs, each with its model clauses quoted from the
knowledge base, the provisions of law behind it and what the buyer must fill in.

The rules are data (kb/data/contract.yaml), written in the roadmap's own questions and answers: this module reuses
kb/roadmap.py's question model, input checks, scenario defaults, derivations and three-valued conditions, so a
section, clause or provision whose condition depends on an unanswered question is kept and marked open, as the
roadmap does. No clause text lives in the rules: every quote is the text of the reference's passages in the
knowledge base, and the fill-in points are read from that text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kb.references import is_reference, parse_reference
from kb.roadmap import (
    CONTRACT_DOCS,
    SCENARIO_KEY,
    UNKNOWN,
    Condition,
    Rules,
    _as_condition,
    _check_condition,
    _holds,
    check_input,
    effective_answers,
    load_rules,
    pending_questions,
    question_view,
)
from kb.scenarios import Bilingual, scenario_label
from kb.vocabulary import SCENARIO_IDS

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase
    from kb.passage import Passage

CONTRACT_FILE = Path(__file__).resolve().parent / "data" / "contract.yaml"

# What the buyer fills in, read from the clause text: bracketed placeholders and choices ([NAME OF PUBLIC
# ORGANISATION], [optional], [VALG 1 …], [Antal måneder]) and blanks written as x's ("xxx kr.").
_BRACKET = re.compile(r"\[([^\[\]\n]{1,300})\]")
_BLANK = re.compile(r"(?<![\w])(?:xx+|XX+)(?![\w])")
_OPTION = re.compile(r"^(optional|valg\b|for\s)|/", re.IGNORECASE)


# --- the rules ---------------------------------------------------------------------------------


class Cited(BaseModel):
    """A clause or provision reference, with the condition under which this variant applies."""

    model_config = ConfigDict(extra="forbid")

    ref: str
    when: Condition = Field(default_factory=dict)

    @field_validator("when", mode="before")
    @classmethod
    def _condition(cls, value: object) -> Condition:
        return _as_condition(value)

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, ref: str) -> str:
        if not is_reference(ref):
            raise ValueError(f"not a reference: {ref!r}")
        return ref


def _cited(value: object) -> object:
    """`ref` alone or `{ref, when}`."""
    return {"ref": value} if isinstance(value, str) else value


class Section(BaseModel):
    """One part of the contract: what it settles, when it applies, the clauses that do it and the law behind it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: Bilingual
    settles: Bilingual
    when: Condition = Field(default_factory=dict)
    clauses: list[Cited] = Field(min_length=1)
    provisions: list[Cited] = Field(default_factory=list)

    @field_validator("when", mode="before")
    @classmethod
    def _condition(cls, value: object) -> Condition:
        return _as_condition(value)

    @field_validator("clauses", "provisions", mode="before")
    @classmethod
    def _items(cls, value: object) -> object:
        return [_cited(item) for item in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _kinds(self) -> Section:
        for index, clause in enumerate(self.clauses):
            if parse_reference(clause.ref).doc_id not in CONTRACT_DOCS:
                raise ValueError(
                    f"clauses.{index}: {clause.ref} is not in a contract document ({', '.join(sorted(CONTRACT_DOCS))})"
                )
        for index, provision in enumerate(self.provisions):
            if parse_reference(provision.ref).doc_id in CONTRACT_DOCS:
                raise ValueError(f"provisions.{index}: {provision.ref} is a contract clause: list it under clauses")
        return self


class ContractRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sections: list[Section] = Field(min_length=1)

    def all_refs(self) -> set[str]:
        """Every clause and provision reference the rules cite."""
        return {item.ref for s in self.sections for item in (*s.clauses, *s.provisions)}


def _check_against_roadmap(rules: ContractRules, roadmap: Rules) -> list[str]:
    """Every condition names a roadmap question (or the scenario) and one of its values; ids are unique."""
    values: dict[str, list[str]] = {SCENARIO_KEY: list(SCENARIO_IDS)}
    values.update({q.key: q.values for q in roadmap.questions})
    problems: list[str] = []
    seen: set[str] = set()
    for section in rules.sections:
        where = f"section {section.id}"
        if section.id in seen:
            problems.append(f"{where}: id: duplicate section id")
        seen.add(section.id)
        problems += _check_condition(section.when, values, f"{where}: when")
        for kind in ("clauses", "provisions"):
            for index, item in enumerate(getattr(section, kind)):
                problems += _check_condition(item.when, values, f"{where}: {kind}.{index}.when")
    return problems


def parse_contract_rules(data: object, roadmap: Rules | None = None, source: str = "contract") -> ContractRules:
    """Validate raw YAML data; ValueError names the section and the field that is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping with sections")  # noqa: TRY004 - one error type for bad rules
    try:
        rules = ContractRules.model_validate(data)
    except ValidationError as exc:
        problems = []
        raw = data.get("sections") or []
        for error in exc.errors():
            loc = tuple(error["loc"])
            name = "(rules)"
            if len(loc) >= 2 and loc[0] == "sections" and isinstance(loc[1], int):
                item = raw[loc[1]] if loc[1] < len(raw) else {}
                name = f"section {item.get('id') if isinstance(item, dict) and item.get('id') else '#' + str(loc[1])}"
                loc = loc[2:]
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {'.'.join(str(p) for p in loc)}: {message}" if loc else f"{name}: {message}")
        raise ValueError(f"{source}: " + "; ".join(problems)) from exc
    problems = _check_against_roadmap(rules, roadmap or load_rules())
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    return rules


@lru_cache(maxsize=4)
def load_contract_rules(path: Path = CONTRACT_FILE) -> ContractRules:
    """The contract rules, read once (cached) and checked against the roadmap's questions."""
    return parse_contract_rules(yaml.safe_load(Path(path).read_text(encoding="utf-8")), source=str(path))


# --- fill-in points ----------------------------------------------------------------------------


def fill_ins(text: str) -> list[dict[str, str]]:
    """The points of a clause text the buyer must fill in or choose, in order of first appearance.

    `placeholder` is a blank to fill ([NAME OF PUBLIC ORGANISATION], [Antal måneder], "xxx");
    `option` is a choice the text offers ([optional], [VALG 1 …], alternatives split by "/").
    """
    found: list[tuple[int, str, str]] = []
    for match in _BRACKET.finditer(text):
        inner = match.group(1).strip()
        found.append((match.start(), match.group(0), "option" if _OPTION.search(inner) else "placeholder"))
    for match in _BLANK.finditer(text):
        found.append((match.start(), match.group(0), "placeholder"))
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for _, marker, kind in sorted(found):
        if marker not in seen:
            seen.add(marker)
            out.append({"text": marker, "kind": kind})
    return out


# --- the engine --------------------------------------------------------------------------------


def _state(holds: bool | None, condition: Condition, facts: dict[str, str]) -> dict[str, Any]:
    return {"open": holds is None, "depends_on": [k for k in condition if k not in facts] if holds is None else []}


def _quote(passages: list[Passage], language: str) -> tuple[str | None, list[Passage]]:
    """The passages of one reference in `language` where the text exists, else in its own language (the first)."""
    if not passages:
        return None, []
    languages = sorted({p.language for p in passages})
    shown = language if language in languages else languages[0]
    return shown, [p for p in passages if p.language == shown]


def _passages(kb: KnowledgeBase | None, ref: str) -> list[Passage]:
    if kb is None or not kb.is_built():
        return []
    return kb.passages_for_ref(ref)


def build_contract(
    scenario: str,
    answers: dict[str, str] | None = None,
    language: str = "da",
    kb: KnowledgeBase | None = None,
    rules: ContractRules | None = None,
    roadmap: Rules | None = None,
) -> dict[str, Any]:
    """The contract draft for a scenario and the answers known so far.

    Sections come in the rules' order. A section, clause or provision applies when its condition holds (after the
    scenario's defaults and the roadmap's derivations); when it depends on an unanswered question it is kept with
    `open: true` and `depends_on`. With `kb`, each clause is quoted from its passages (in `language` where the text
    exists, else in its own language with `in_language: false`) and each provision resolved to its first passage;
    a reference the knowledge base does not hold is listed with no passages.
    RoadmapInputError for an unknown scenario, question key or answer value.
    """
    roadmap = roadmap or load_rules()
    rules = rules or load_contract_rules()
    answers = dict(answers or {})
    check_input(scenario, answers, roadmap)
    language = "en" if language == "en" else "da"
    sources = effective_answers(scenario, answers, roadmap)
    facts = {key: item["value"] for key, item in sources.items() if item["value"] != UNKNOWN}
    facts[SCENARIO_KEY] = scenario
    asked = set(answers) | {k for k, v in sources.items() if v["value"] != UNKNOWN}
    versions: dict[tuple[str, str, str], dict[str, str]] = {}

    def used(passage: Passage) -> None:
        versions.setdefault(
            (passage.doc_id, passage.language, passage.version),
            {"doc_id": passage.doc_id, "title": passage.title, "language": passage.language, "version": passage.version},
        )

    def clause(item: Cited, holds: bool | None) -> dict[str, Any]:
        shown, quoted = _quote(_passages(kb, item.ref), language)
        for passage in quoted:
            used(passage)
        points: list[dict[str, str]] = []
        for passage in quoted:
            points += [p for p in fill_ins(passage.text) if p not in points]
        return {
            "ref": item.ref,
            "doc_id": parse_reference(item.ref).doc_id,
            "title": quoted[0].title if quoted else None,
            "heading": quoted[0].heading if quoted else None,
            "language": shown,
            "in_language": shown == language if shown else None,
            "version": quoted[0].version if quoted else None,
            "passages": [{"passage_id": p.passage_id, "ref": p.ref, "text": p.text} for p in quoted],
            "fill_ins": points,
            "when": item.when,
            **_state(holds, item.when, facts),
        }

    def provision(item: Cited, holds: bool | None) -> dict[str, Any]:
        found = _passages(kb, item.ref)
        first = None
        if found:
            shown, own = _quote(found, language)
            exact = [p for p in own if p.ref == item.ref]
            first = (exact or own)[0]
            used(first)
        return {
            "ref": item.ref,
            "doc_id": parse_reference(item.ref).doc_id,
            "passage_id": first.passage_id if first else None,
            "title": first.title if first else None,
            "heading": first.heading if first else None,
            "language": first.language if first else None,
            "version": first.version if first else None,
            "when": item.when,
            **_state(holds, item.when, facts),
        }

    sections = []
    for section in rules.sections:
        holds = _holds(section.when, facts)
        if holds is False:
            continue
        clauses = []
        for item in section.clauses:
            item_holds = _holds(item.when, facts)
            if item_holds is not False:
                clauses.append(clause(item, item_holds))
        provisions = []
        for item in section.provisions:
            item_holds = _holds(item.when, facts)
            if item_holds is not False:
                provisions.append(provision(item, item_holds))
        points: list[dict[str, Any]] = []
        for quoted in clauses:
            for point in quoted["fill_ins"]:
                known = next((p for p in points if p["text"] == point["text"]), None)
                if known is None:
                    points.append({**point, "refs": [quoted["ref"]]})
                elif quoted["ref"] not in known["refs"]:
                    known["refs"].append(quoted["ref"])
        sections.append(
            {
                "id": section.id,
                "title": section.title.get(language),
                "settles": section.settles.get(language),
                "clauses": clauses,
                "provisions": provisions,
                "fill_ins": points,
                "when": section.when,
                **_state(holds, section.when, facts),
            }
        )

    pending = [q for q in pending_questions(roadmap, facts) if q.key not in asked]
    return {
        "scenario": scenario,
        "scenario_label": scenario_label(scenario, language),
        "language": language,
        "answers": {key: sources[key] for key in roadmap.keys if key in sources},
        "questions": [question_view(q, language) for q in pending],
        "sections": sections,
        "versions": sorted(versions.values(), key=lambda v: (v["doc_id"], v["language"], v["version"])),
    }


# --- the draft as a document -------------------------------------------------------------------

WORDS: dict[str, dict[str, str]] = {
    "da": {
        "title": "Kontraktudkast",
        "scenario": "Scenarie",
        "answers": "Svar",
        "versions": "Tekster brugt (version)",
        "settles": "Afsnittet fastlægger",
        "clauses": "Klausuler",
        "provisions": "Bestemmelser bag afsnittet",
        "fill_in": "Udfyldes af køberen",
        "open": "åbent – afhænger af",
        "other_language": "citeret på originalsproget ({language}); teksten findes ikke på dansk",
        "missing": "(teksten er ikke i vidensbasen)",
        "option": "valg",
        "placeholder": "udfyldes",
        "unknown": "ved ikke",
        "none": "ingen endnu",
        "source_scenario": "givet af scenariet",
        "source_derived": "følger af reglerne",
        "disclaimer": "Udkastet er sat sammen af modelklausuler og bestemmelser fra vidensbasen; det er ikke juridisk "
        "rådgivning og skal gennemgås af en jurist, før det bruges.",
    },
    "en": {
        "title": "Contract draft",
        "scenario": "Scenario",
        "answers": "Answers",
        "versions": "Texts used (version)",
        "settles": "This section settles",
        "clauses": "Clauses",
        "provisions": "Provisions behind this section",
        "fill_in": "For the buyer to fill in",
        "open": "open – depends on",
        "other_language": "quoted in its own language ({language}); the text does not exist in English",
        "missing": "(the text is not in the knowledge base)",
        "option": "option",
        "placeholder": "fill in",
        "unknown": "don't know",
        "none": "none yet",
        "source_scenario": "given by the scenario",
        "source_derived": "follows from the rules",
        "disclaimer": "The draft is put together from model clauses and provisions in the knowledge base; it is not "
        "legal advice and must be reviewed by a lawyer before use.",
    },
}


def _answer_lines(draft: dict[str, Any], roadmap: Rules | None = None) -> list[tuple[str, str]]:
    """(question, answer with its source) for every known answer, in the asker's language."""
    roadmap = roadmap or load_rules()
    words = WORDS[draft["language"]]
    lines = []
    for key, item in draft["answers"].items():
        question = roadmap.question(key)
        labels = {o.value: o.label.get(draft["language"]) for o in question.options}
        value = words["unknown"] if item["value"] == UNKNOWN else labels.get(item["value"], item["value"])
        note = {"scenario": words["source_scenario"], "derived": words["source_derived"]}.get(item["source"])
        lines.append((question.text.get(draft["language"]), f"{value} ({note})" if note else value))
    return lines


def _open_note(item: dict[str, Any], words: dict[str, str]) -> str:
    return f" [{words['open']}: {', '.join(item['depends_on'])}]" if item["open"] else ""


def _clause_label(clause: dict[str, Any], words: dict[str, str]) -> str:
    label = clause["ref"] + (f" – {clause['heading']}" if clause["heading"] else "")
    if clause["passages"] and not clause["in_language"]:
        label += f" ({words['other_language'].format(language=clause['language'])})"
    return label


def _provision_label(provision: dict[str, Any]) -> str:
    parts = [provision["ref"]]
    if provision["heading"]:
        parts.append(provision["heading"])
    text = " – ".join(parts)
    return text + (f" ({provision['version']})" if provision["version"] else "")


def contract_markdown(draft: dict[str, Any]) -> str:
    """The draft as Markdown: title block, one heading per section, clauses quoted with their references,
    provisions as a numbered list, fill-in points in bold."""
    words = WORDS[draft["language"]]
    out = [f"# {words['title']}: {draft['scenario_label']}", "", f"**{words['scenario']}:** {draft['scenario_label']}", ""]
    out += [f"## {words['answers']}", ""]
    out += [f"- {question}: {answer}" for question, answer in _answer_lines(draft)] or [f"- {words['none']}"]
    out += ["", f"## {words['versions']}", ""]
    out += [f"- {v['title']} ({v['doc_id']}): {v['version']}, {v['language']}" for v in draft["versions"]] or [f"- {words['none']}"]
    out += ["", f"*{words['disclaimer']}*", ""]
    for number, section in enumerate(draft["sections"], 1):
        out += [f"## {number}. {section['title']}{_open_note(section, words)}", "", f"*{words['settles']}:* {section['settles']}", ""]
        out += [f"### {words['clauses']}", ""]
        for clause in section["clauses"]:
            out += [f"**{_clause_label(clause, words)}**{_open_note(clause, words)}", ""]
            if not clause["passages"]:
                out += [f"> {words['missing']}", ""]
            points = [p["text"] for p in clause["fill_ins"]]
            for passage in clause["passages"]:
                text = "".join(f"**{piece}**" if is_point else piece for piece, is_point in _segments(passage["text"], points))
                out += ["\n".join("> " + line for line in text.splitlines()), ""]
        if section["provisions"]:
            out += [f"### {words['provisions']}", ""]
            out += [f"{n}. {_provision_label(p)}{_open_note(p, words)}" for n, p in enumerate(section["provisions"], 1)]
            out.append("")
        if section["fill_ins"]:
            out += [f"### {words['fill_in']}", ""]
            out += [f"- **{p['text']}** ({words[p['kind']]}; {', '.join(p['refs'])})" for p in section["fill_ins"]]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _segments(text: str, points: list[str]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is a fill-in point) at every occurrence of the points (longest first)."""
    if not points:
        return [(text, False)]
    pattern = re.compile("|".join(re.escape(p) for p in sorted(set(points), key=len, reverse=True)))
    out: list[tuple[str, bool]] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            out.append((text[position : match.start()], False))
        out.append((match.group(0), True))
        position = match.end()
    if position < len(text):
        out.append((text[position:], False))
    return out


def _highlighted(paragraph: Any, text: str, points: list[str]) -> None:
    """Add `text` to a python-docx paragraph with every fill-in point as a bold, yellow-highlighted run."""
    from docx.enum.text import WD_COLOR_INDEX

    for piece, is_point in _segments(text, points):
        run = paragraph.add_run(piece)
        if is_point:
            run.bold = True
            run.font.highlight_color = WD_COLOR_INDEX.YELLOW


def contract_docx(draft: dict[str, Any]) -> bytes:
    """The draft as a Word document (python-docx): a title page naming the scenario, the answers and the versions
    of the texts used; one heading per section; each clause quoted (style Quote) under its reference; the
    provisions as numbered references; the fill-in points highlighted."""
    import io

    from docx import Document
    from docx.enum.text import WD_BREAK

    words = WORDS[draft["language"]]
    document = Document()
    # style objects looked up once: python-docx finds a style by name with a scan of the whole style sheet
    quote_style, bullet_style = document.styles["Quote"], document.styles["List Bullet"]
    document.core_properties.title = f"{words['title']}: {draft['scenario_label']}"
    document.core_properties.language = draft["language"]
    document.add_heading(f"{words['title']}: {draft['scenario_label']}", level=0)
    document.add_paragraph().add_run(f"{words['scenario']}: {draft['scenario_label']}").bold = True
    document.add_heading(words["answers"], level=2)
    lines = _answer_lines(draft)
    if lines:
        table = document.add_table(rows=0, cols=2)
        table.style = "Table Grid"
        for question, answer in lines:
            cells = table.add_row().cells
            cells[0].text, cells[1].text = question, answer
    else:
        document.add_paragraph(words["none"])
    document.add_heading(words["versions"], level=2)
    for version in draft["versions"]:
        document.add_paragraph(f"{version['title']} ({version['doc_id']}): {version['version']}, {version['language']}", style=bullet_style)
    document.add_paragraph().add_run(words["disclaimer"]).italic = True
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    for number, section in enumerate(draft["sections"], 1):
        document.add_heading(f"{number}. {section['title']}{_open_note(section, words)}", level=1)
        settles = document.add_paragraph()
        settles.add_run(f"{words['settles']}: ").bold = True
        settles.add_run(section["settles"]).italic = True
        document.add_heading(words["clauses"], level=2)
        for clause in section["clauses"]:
            document.add_heading(_clause_label(clause, words) + _open_note(clause, words), level=3)
            if not clause["passages"]:
                document.add_paragraph(words["missing"], style=quote_style)
            points = [p["text"] for p in clause["fill_ins"]]
            for passage in clause["passages"]:
                _highlighted(document.add_paragraph(style=quote_style), passage["text"], points)
        if section["provisions"]:
            document.add_heading(words["provisions"], level=2)
            for n, provision in enumerate(section["provisions"], 1):
                document.add_paragraph(f"{n}. {_provision_label(provision)}{_open_note(provision, words)}")
        if section["fill_ins"]:
            document.add_heading(words["fill_in"], level=2)
            for point in section["fill_ins"]:
                paragraph = document.add_paragraph(style=bullet_style)
                _highlighted(paragraph, point["text"], [point["text"]])
                paragraph.add_run(f" ({words[point['kind']]}; {', '.join(point['refs'])})")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
