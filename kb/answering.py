"""The extractive answerer: sentences taken from the cited passages, never written anew.

Why extractive by default: every sentence of an answer is a sentence of a
passage it cites, so an answer cannot state what its passages do not say, and
instructions hidden in a passage are never followed (nor quoted: INSTRUCTION). The answer is
composed as: the direct answer (sentences marked [n]); what it means in the
scenario (sentences from the scenario's provisions among the evidence, and
the provisions to look at); the sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kb.answer import AnswerSentence, Citation
from kb.keywords import tokenize, tokenize_query
from kb.passage import Passage
from kb.scenarios import in_profile

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-ZÆØÅ(‘»\"0-9])")
_MIN_CHARS = 25
# Text addressed to a model, not law ("ignore your previous instructions ..."): never quoted as an answer here,
# never support for a generated claim (kb.generator), so a planted instruction changes nothing.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|ignorer|glem|se bort fra)\b[^.!?\n]{0,40}\b(?:instructions?|instruktion(?:er|erne)?|"
    r"prompt|rules|regler(?:ne)?)\b|\b(?:you are now|system prompt|du er nu)\b",
    re.IGNORECASE,
)
_MAX_CHARS = 600

TEXTS = {
    "da": {
        "scenario": "I scenariet {label}",
        "provisions": "Bestemmelser, der typisk er relevante i scenariet {label}: {refs}.",
        "sources": "Kilder",
        "declined": "Jeg kan ikke finde et svar på spørgsmålet i vidensbasens tekster, så jeg svarer ikke.",
        "see_also": "Se eventuelt disse nærmeste passager",
        "english_source": "(citeret fra den engelske tekst, som er den eneste i vidensbasen)",
    },
    "en": {
        "scenario": "In the {label} scenario",
        "provisions": "Provisions that typically matter in the {label} scenario: {refs}.",
        "sources": "Sources",
        "declined": "I cannot find an answer to this question in the texts of the knowledge base, so I do not answer it.",
        "see_also": "You may want to look at these nearest passages",
        "english_source": "",
    },
}


@dataclass
class Evidence:
    """A passage the answer may draw on, with its retrieval score and rank."""

    passage: Passage
    score: float
    rank: int
    named: bool = False  # the question names this provision
    in_profile: bool = False  # the scenario's profile covers it


@dataclass
class Composition:
    """What the answerer produced: the sentences, their citations and the text."""

    sentences: list[AnswerSentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    text: str = ""


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage; an introduction ending in ':' keeps the first points that follow it."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.endswith(":") and i + 1 < len(lines):
            joined = " ".join([line, *lines[i + 1 : i + 3]])
            out.append(joined)
            i += 3
            continue
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
        i += 1
    return [s if len(s) <= _MAX_CHARS else s[: _MAX_CHARS].rsplit(" ", 1)[0] + " …" for s in out if len(s) >= _MIN_CHARS]


def _overlap(question_tokens: set[str], sentence: str, language: str, idf: Callable[[str], float]) -> float:
    """IDF-weighted share of the question's words that the sentence contains."""
    if not question_tokens:
        return 0.0
    words = set(tokenize(sentence, language))
    total = sum(idf(t) for t in question_tokens)
    return sum(idf(t) for t in question_tokens & words) / total if total else 0.0


MIN_OVERLAP = 0.12  # below this share of the question's weighted words, only the best passage may speak


def _scored_sentences(
    question: str, evidence: list[Evidence], idf: Callable[[str], float]
) -> list[tuple[float, Evidence, int, str, float]]:
    """Every sentence of the evidence with its score (overlap with the question, the passage's rank, its position)
    and its overlap alone."""
    q_tokens = set(tokenize_query(question))
    scored = []
    for ev in evidence:
        for position, sentence in enumerate(split_sentences(ev.passage.text)):
            if INSTRUCTION.search(sentence):
                continue
            overlap = _overlap(q_tokens, sentence, ev.passage.language, idf)
            score = overlap + 0.35 / (1 + ev.rank) + (0.08 if position == 0 else 0.0) + (0.25 if ev.named else 0.0)
            scored.append((score, ev, position, sentence, overlap))
    scored.sort(key=lambda item: (-item[0], item[1].rank, item[2]))
    return scored


def compose(
    question: str,
    language: str,
    evidence: list[Evidence],
    scenario_label: str,
    profile_refs: list[str],
    idf: Callable[[str], float],
    *,
    max_answer_sentences: int = 3,
    max_scenario_sentences: int = 2,
) -> Composition:
    """Compose the answer from the evidence: direct answer, the scenario's view, sources."""
    texts = TEXTS.get(language, TEXTS["en"])
    result = Composition()
    numbers: dict[str, int] = {}

    def cite(ev: Evidence) -> int:
        if ev.passage.passage_id not in numbers:
            numbers[ev.passage.passage_id] = len(numbers) + 1
            result.citations.append(Citation.of(numbers[ev.passage.passage_id], ev.passage, ev.score))
        return numbers[ev.passage.passage_id]

    scored = _scored_sentences(question, evidence, idf)
    # the direct answer opens with the best sentence of the best passage: retrieval ranks passages better
    # than word overlap ranks sentences
    best = next((item for item in scored if item[1].rank == 0), None)
    if best is not None:
        scored.remove(best)
        scored.insert(0, best)
    used: set[str] = set()
    per_passage: dict[str, int] = {}
    for _, ev, position, sentence, overlap in scored:
        if len([s for s in result.sentences if s.section == "answer"]) >= max_answer_sentences:
            break
        if result.sentences and overlap < MIN_OVERLAP and not (ev.named and ev.rank == 0):
            continue  # a weak sentence from a weaker passage adds noise, not an answer
        if ev.in_profile and not ev.named and ev.rank > 2:
            continue  # kept for the scenario part
        if sentence in used or per_passage.get(ev.passage.passage_id, 0) >= 1:
            continue
        used.add(sentence)
        per_passage[ev.passage.passage_id] = per_passage.get(ev.passage.passage_id, 0) + 1
        result.sentences.append(AnswerSentence(text=sentence, citations=[cite(ev)], section="answer"))

    scenario_sentences = 0
    for _, ev, position, sentence, overlap in scored:
        if scenario_sentences >= max_scenario_sentences:
            break
        if overlap < MIN_OVERLAP:
            continue
        if not ev.in_profile or sentence in used or ev.passage.passage_id in per_passage:
            continue
        used.add(sentence)
        per_passage[ev.passage.passage_id] = 1
        scenario_sentences += 1
        result.sentences.append(AnswerSentence(text=sentence, citations=[cite(ev)], section="scenario"))

    lines = [f"{s.text} [{s.citations[0]}]" for s in result.sentences if s.section == "answer"]
    if any(c.language != language for c in result.citations) and texts["english_source"]:
        lines.append(texts["english_source"])
    scenario_lines = [f"{s.text} [{s.citations[0]}]" for s in result.sentences if s.section == "scenario"]
    profile_shown = _profile_summary(profile_refs, evidence, numbers)
    text = "\n".join(lines)
    if scenario_lines or profile_shown:
        text += f"\n\n{texts['scenario'].format(label=scenario_label)}:\n" + "\n".join(scenario_lines)
        if profile_shown:
            text += ("\n" if scenario_lines else "") + texts["provisions"].format(label=scenario_label, refs=", ".join(profile_shown))
    text += f"\n\n{texts['sources']}:\n" + "\n".join(
        f"[{c.n}] {c.ref} – {c.heading} ({c.version}, {c.language})" for c in result.citations
    )
    result.text = text.strip()
    return result


def _profile_summary(profile_refs: list[str], evidence: list[Evidence], numbers: dict[str, int]) -> list[str]:
    """The scenario's provisions (and tagged uploads) among the evidence, as references (with [n] where cited),
    at most five."""
    shown: list[str] = []
    for entry in profile_refs:
        for ev in evidence:
            if in_profile([entry], ev.passage.ref):
                n = numbers.get(ev.passage.passage_id)
                ref = entry if ":" in entry else ev.passage.ref  # a tagged upload is shown by its passage's reference
                shown.append(f"{ref}" + (f" [{n}]" if n else ""))
                break
        if len(shown) >= 5:
            break
    return shown


def declined_text(language: str, see_also: list[Citation]) -> str:
    """The plain refusal in the question's language, with the nearest passages to look at."""
    texts = TEXTS.get(language, TEXTS["en"])
    lines = [texts["declined"]]
    if see_also:
        lines.append(f"\n{texts['see_also']}:")
        lines.extend(f"- {c.ref} – {c.heading}" for c in see_also)
    return "\n".join(lines)
