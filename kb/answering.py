"""The extractive answerer: whole provisions and sentences taken from the cited passages, never written anew.

Why extractive by default: every sentence of an answer is a sentence of a
passage it cites, so an answer cannot state what its passages do not say, and
instructions hidden in a passage are never followed (nor quoted: INSTRUCTION).

Why whole provisions: a lawyer reads a stk. with its points or an article's
paragraph as one rule; a sentence cut out of it ("... når [1]") is not an answer.
So the direct answer quotes the best unit's paragraph whole when it is short
(WHOLE_CHARS), else the sentences of it that answer the question, in the text's
order (kb.sentences never cuts inside an abbreviation or an enumeration); then
at most MORE_UNITS other units that add to it. The answer is composed as three
sections: the direct answer (marked [n]); what it means in the scenario
(sentences from the scenario's provisions among the evidence, and the provisions
to look at); the sources, where the first SEE_ALSO_UNITS units search found that
the answer does not quote are listed as "see also", numbered, so the answer
never cites less than search found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kb.answer import AnswerSentence, Citation
from kb.keywords import tokenize
from kb.passage import Passage
from kb.scenarios import in_profile
from kb.sentences import ends_cleanly, split_sentences

_MIN_CHARS = 25  # a shorter sentence ("Rule 8", a heading) is quoted only as part of a whole paragraph
WHOLE_CHARS = 900  # the best unit's paragraph (a stk. with its points) up to this length is quoted whole
MORE_WHOLE_CHARS = 600  # a further unit's paragraph up to this length is quoted whole
MAX_SENTENCE_CHARS = 900  # a longer sentence is quoted only when it is the best unit's best: whole, never cut
SIBLING_LOOKUP_CHARS = 1200  # a first piece up to this length is taken as its whole paragraph (see _paragraph)
MORE_UNITS = 2  # units quoted after the best one (another act's rule, the exception)
SEE_ALSO_UNITS = 5  # the answer cites at least the first five units (and references) of the evidence
# Text addressed to a model, not law ("ignore your previous instructions ..."): never quoted as an answer here,
# never support for a generated claim (kb.generator), so a planted instruction changes nothing.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|ignorer|glem|se bort fra)\b[^.!?\n]{0,40}\b(?:instructions?|instruktion(?:er|erne)?|"
    r"prompt|rules|regler(?:ne)?)\b|\b(?:you are now|system prompt|du er nu)\b",
    re.IGNORECASE,
)

TEXTS = {
    "da": {
        "scenario": "I scenariet {label}",
        "provisions": "Bestemmelser, der typisk er relevante i scenariet {label}: {refs}.",
        "sources": "Kilder",
        "declined": "Jeg kan ikke finde et svar på spørgsmålet i vidensbasens tekster, så jeg svarer ikke.",
        "see_also": "Se eventuelt disse nærmeste passager",
        "english_source": "(citeret fra den engelske tekst, som er den eneste i vidensbasen)",
        "see_also_sources": "Se også",
    },
    "en": {
        "scenario": "In the {label} scenario",
        "provisions": "Provisions that typically matter in the {label} scenario: {refs}.",
        "sources": "Sources",
        "declined": "I cannot find an answer to this question in the texts of the knowledge base, so I do not answer it.",
        "see_also": "You may want to look at these nearest passages",
        "english_source": "",
        "see_also_sources": "See also",
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
class Section:
    """One headed part of the answer: the direct answer, what it means in the scenario, or the sources.

    `citations` are the numbers the part cites (for sources: the passages the answer quotes); `see_also` (sources
    only) the numbers of the passages search found that the answer lists without quoting."""

    kind: str  # "direct", "scenario" or "sources"
    heading: str
    text: str
    citations: list[int] = field(default_factory=list)
    see_also: list[int] = field(default_factory=list)


@dataclass
class Composition:
    """What the answerer produced: the sentences, their citations, the text and its sections."""

    sentences: list[AnswerSentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    text: str = ""
    sections: list[Section] = field(default_factory=list)


def unit_of(passage: Passage) -> str:
    """The unit a passage belongs to (DESIGN): its reference up to the first '.'."""
    return passage.ref.split(".")[0]


def paragraph_siblings(unit_passages: Callable[[str], Iterable[Passage]]) -> Callable[[Passage], list[Passage]]:
    """`siblings` for compose from a lookup of a unit's passages by locator unit (Reader.unit_passages, kb/reading.py):
    the pieces of the passage's paragraph (same reference, language and version), in document order."""

    def siblings(passage: Passage) -> list[Passage]:
        found = [
            p
            for p in unit_passages(passage.locator.split(".")[0])
            if p.ref == passage.ref and p.language == passage.language and p.version == passage.version
        ]
        return sorted(found, key=lambda p: (p.order, p.piece))

    return siblings


def _overlap(question_tokens: set[str], sentence: str, language: str, idf: Callable[[str], float]) -> float:
    """IDF-weighted share of the question's words that the sentence contains."""
    if not question_tokens:
        return 0.0
    words = set(tokenize(sentence, language))
    total = sum(idf(t) for t in question_tokens)
    return sum(idf(t) for t in question_tokens & words) / total if total else 0.0


MIN_OVERLAP = 0.2  # below this share of the question's weighted words (in the passage's language), only the best unit speaks


@dataclass
class _Quoted:
    """A sentence the answer quotes, with the passages it comes from (two when it runs over a piece boundary) and
    how well it answers."""

    passages: list[Passage]
    position: int  # the text's order
    text: str
    overlap: float

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(p.passage_id for p in self.passages)


def _paragraph(ev: Evidence, siblings: Callable[[Passage], list[Passage]] | None) -> list[Passage]:
    """The passage's whole paragraph (its pieces, in order); the passage alone without `siblings`.

    A first piece up to SIBLING_LOOKUP_CHARS is taken as the whole paragraph without looking: ingest splits a
    paragraph only when it is over 1800 characters and packs its first piece nearly full, so a shorter first piece
    is nearly always the whole paragraph (of the corpus's 431 split paragraphs, 25 have a first piece this short, 6
    one short enough to be quoted whole), and the look-up is a Chroma query on a cold cache (15-40 ms)."""
    if siblings is None or (ev.passage.piece == 1 and len(ev.passage.text) <= SIBLING_LOOKUP_CHARS):
        return [ev.passage]
    pieces = [
        p for p in siblings(ev.passage)
        if p.ref == ev.passage.ref and p.language == ev.passage.language and p.version == ev.passage.version
    ]
    if all(p.passage_id != ev.passage.passage_id for p in pieces):
        return [ev.passage]
    return pieces


QuestionTokens = Callable[[str], set[str]]  # the question's tokens as a text in this language is tokenised


def _question_tokens(question: str) -> QuestionTokens:
    """The question tokenised as each passage's language is (stop words and stems of that language), so the
    other language's stop words ("the", "is" read as Danish) do not weigh in the share a sentence holds."""
    cache: dict[str, set[str]] = {}

    def tokens(language: str) -> set[str]:
        if language not in cache:
            cache[language] = set(tokenize(question, language))
        return cache[language]

    return tokens


def _sentences(pieces: list[Passage], q_tokens: QuestionTokens, idf: Callable[[str], float]) -> tuple[list[_Quoted], bool]:
    """Every sentence of the paragraph in order with its overlap, and whether one was left out as an instruction.

    The pieces are split as one text: ingest cuts an oversize paragraph where its old splitter saw a sentence end
    ("... artikels stk. | 1 omhandlede ..."), so a sentence may run over into the next piece; it then cites both."""
    text = "\n".join(p.text for p in pieces)
    starts = []
    offset = 0
    for p in pieces:
        starts.append(offset)
        offset += len(p.text) + 1
    language = pieces[0].language
    out: list[_Quoted] = []
    dropped = False
    cursor = 0
    for j, sentence in enumerate(split_sentences(text)):
        begin = text.index(sentence, cursor)
        end = cursor = begin + len(sentence)
        if INSTRUCTION.search(sentence):
            dropped = True
            continue
        spanned = [p for p, start in zip(pieces, starts) if start < end and begin < start + len(p.text)]
        out.append(_Quoted(spanned, j, sentence, _overlap(q_tokens(language), sentence, language, idf)))
    return out, dropped


def _quote(
    ev: Evidence,
    siblings: Callable[[Passage], list[Passage]] | None,
    q_tokens: QuestionTokens,
    idf: Callable[[str], float],
    *,
    whole_chars: int,
    max_sentences: int,
    best_unit: bool,
) -> list[_Quoted]:
    """What the answer quotes of one unit: its paragraph whole when short, else the sentences that answer, in the
    text's order. A sentence is never cut: a long one is quoted whole (the best unit's best) or not at all."""
    pieces = _paragraph(ev, siblings)
    sentences, _ = _sentences(pieces, q_tokens, idf)
    while sentences and sentences[-1].text.rstrip().endswith(":"):
        sentences.pop()  # an introduction whose points are passages of their own ("... følgende områder:") says nothing
    if not sentences:
        return []
    if sum(len(p.text) + 1 for p in pieces) - 1 <= whole_chars:
        return sentences
    ranked = sorted(
        sentences,
        key=lambda s: (-(s.overlap + (0.05 if ev.passage.passage_id in s.key else 0.0)), s.position),
    )
    usable = [s for s in ranked if _MIN_CHARS <= len(s.text) <= MAX_SENTENCE_CHARS and ends_cleanly(s.text)]
    if not usable:
        return [ranked[0]] if best_unit else []
    chosen = [usable[0]]
    size = len(usable[0].text)
    for s in usable[1:]:
        if len(chosen) >= max_sentences:
            break
        if s.overlap < MIN_OVERLAP or size + len(s.text) > whole_chars:
            continue
        chosen.append(s)
        size += len(s.text)
    return sorted(chosen, key=lambda s: s.position)


def _top_passages(evidence: list[Evidence], min_score: float = 0.0) -> list[Evidence]:
    """The evidence the answer must cite: the first passage of each of the first SEE_ALSO_UNITS distinct references
    and of each of the first SEE_ALSO_UNITS distinct units, in rank order (what recall@5 of search counts).
    Past the best passage, a passage scored below `min_score` (the ranker's probability) is left out unless the
    question names it: a pointer the ranker doubts costs the reader more than it gives."""
    refs: list[str] = []
    units: list[str] = []
    out: list[Evidence] = []
    for ev in evidence:
        if out and ev.score < min_score and not ev.named:
            continue
        ref, unit = ev.passage.ref, unit_of(ev.passage)
        new_ref = ref not in refs and len(refs) < SEE_ALSO_UNITS
        new_unit = unit not in units and len(units) < SEE_ALSO_UNITS
        if ref not in refs:
            refs.append(ref)
        if unit not in units:
            units.append(unit)
        if new_ref or new_unit:
            out.append(ev)
    return out


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
    siblings: Callable[[Passage], list[Passage]] | None = None,
    see_also_min_score: float = 0.0,
) -> Composition:
    """Compose the answer from the evidence (best first): the direct answer, the scenario's view, the sources.

    `siblings(passage)` gives the pieces of the passage's paragraph in order (same doc, language, version), so a
    paragraph split into pieces is quoted whole; without it each passage stands alone. `max_answer_sentences` is
    the most sentences quoted from a unit too long to quote whole."""
    texts = TEXTS.get(language, TEXTS["en"])
    result = Composition()
    numbers: dict[str, int] = {}
    by_id: dict[str, Passage] = {}
    score_of: dict[str, float] = {ev.passage.passage_id: ev.score for ev in evidence}

    def number(passage: Passage) -> int:
        if passage.passage_id not in numbers:
            numbers[passage.passage_id] = len(numbers) + 1
            by_id[passage.passage_id] = passage
        return numbers[passage.passage_id]

    top = _top_passages(evidence, see_also_min_score)
    q_tokens = _question_tokens(question)

    # the direct answer: the best unit, then at most MORE_UNITS units (or other paragraphs of it) that add to it
    blocks: list[list[_Quoted]] = []
    used_units: set[str] = set()
    used_refs: set[str] = set()
    used_passages: set[str] = set()
    for best in evidence[:3]:  # the best passage, unless it is only an introduction to points elsewhere
        block = _quote(best, siblings, q_tokens, idf, whole_chars=WHOLE_CHARS, max_sentences=max_answer_sentences, best_unit=True)
        if block:
            blocks.append(block)
            used_units.add(unit_of(best.passage))
            used_refs.add(best.passage.ref)
            break
    first_refs = list(dict.fromkeys(ev.passage.ref for ev in evidence))[:SEE_ALSO_UNITS]
    candidates = [ev for ev in evidence if ev.passage.ref in first_refs or ev.named]
    for ev in candidates:
        if not blocks or len(blocks) > MORE_UNITS:
            break
        if ev.passage.ref in used_refs:
            continue  # another paragraph of a quoted unit may add to it (a provider's and a deployer's definition)
        if ev.in_profile and not ev.named and ev.rank > 2:
            continue  # kept for the scenario part
        block = _quote(ev, siblings, q_tokens, idf, whole_chars=MORE_WHOLE_CHARS, max_sentences=2, best_unit=False)
        if not block or (max(s.overlap for s in block) < MIN_OVERLAP and not ev.named):
            continue  # a unit that shares too little with the question adds noise, not an answer
        used_units.add(unit_of(ev.passage))
        used_refs.add(ev.passage.ref)
        blocks.append(block)
    blocks = [b for b in blocks if b]
    direct_lines = []
    for block in blocks:
        runs: list[str] = []
        for s in block:
            cited = [number(p) for p in s.passages]
            used_passages.update(s.key)
            result.sentences.append(AnswerSentence(text=s.text, citations=cited, section="answer"))
        # one mark after each run of sentences from the same passage(s): a whole paragraph reads as one quote
        i = 0
        while i < len(block):
            j = i
            while j + 1 < len(block) and block[j + 1].key == block[i].key:
                j += 1
            marks = "".join(f"[{numbers[pid]}]" for pid in block[i].key)
            runs.append(" ".join(s.text for s in block[i : j + 1]) + f" {marks}")
            i = j + 1
        direct_lines.append(" ".join(runs))
    # numbers follow first use in the direct answer (which quotes only search's first five references and units, and
    # named provisions), then the rest of those five in search's order ("see also"), then the scenario part: the
    # answer's citations begin with what search found
    for ev in top:
        number(ev.passage)
    quoted_languages = {by_id[pid].language for pid in used_passages}
    if any(lang != language for lang in quoted_languages) and texts["english_source"]:
        direct_lines.append(texts["english_source"])

    # what it means in the scenario: sentences of the scenario's provisions the direct answer did not quote
    scenario_lines: list[str] = []
    scored: list[tuple[float, Evidence, int, str]] = []
    for ev in evidence:
        if not ev.in_profile or ev.passage.passage_id in used_passages or unit_of(ev.passage) in used_units:
            continue
        for position, sentence in enumerate(split_sentences(ev.passage.text)):
            if INSTRUCTION.search(sentence) or not (_MIN_CHARS <= len(sentence) <= MAX_SENTENCE_CHARS):
                continue
            if not ends_cleanly(sentence):
                continue
            overlap = _overlap(q_tokens(ev.passage.language), sentence, ev.passage.language, idf)
            if overlap >= MIN_OVERLAP:
                scored.append((overlap + 0.35 / (1 + ev.rank), ev, position, sentence))
    scored.sort(key=lambda item: (-item[0], item[1].rank, item[2]))
    scenario_passages: set[str] = set()
    for _, ev, _, sentence in scored:
        if len(scenario_lines) >= max_scenario_sentences:
            break
        if ev.passage.passage_id in scenario_passages:
            continue
        scenario_passages.add(ev.passage.passage_id)
        n = number(ev.passage)
        result.sentences.append(AnswerSentence(text=sentence, citations=[n], section="scenario"))
        scenario_lines.append(f"{sentence} [{n}]")
    used_passages |= scenario_passages

    # the sources: what the answer quotes, then what search found that it does not quote ("see also")
    profile_shown = _profile_summary(profile_refs, evidence, numbers)
    result.citations = [
        Citation.of(n, by_id[pid], score_of.get(pid, _sibling_score(by_id[pid], score_of, by_id)))
        for pid, n in sorted(numbers.items(), key=lambda item: item[1])
    ]
    quoted = [c for c in result.citations if c.passage_id in used_passages]
    see_also = [c for c in result.citations if c.passage_id not in used_passages]

    def source_line(c: Citation) -> str:
        return f"[{c.n}] {c.ref} – {c.heading} ({c.version}, {c.language})"

    sources_text = "\n".join(source_line(c) for c in quoted)
    if see_also:
        sources_text += ("\n" if sources_text else "") + f"{texts['see_also_sources']}:\n" + "\n".join(source_line(c) for c in see_also)
    direct_text = "\n".join(direct_lines)
    scenario_heading = texts["scenario"].format(label=scenario_label)
    scenario_text = "\n".join(scenario_lines)
    if profile_shown:
        scenario_text += ("\n" if scenario_lines else "") + texts["provisions"].format(label=scenario_label, refs=", ".join(profile_shown))
    result.sections = [Section("direct", "", direct_text, sorted({n for s in result.sentences if s.section == "answer" for n in s.citations}))]
    text = direct_text
    if scenario_text:
        result.sections.append(Section("scenario", scenario_heading, scenario_text, sorted(numbers[pid] for pid in scenario_passages)))
        text += f"\n\n{scenario_heading}:\n{scenario_text}"
    result.sections.append(Section("sources", texts["sources"], sources_text, [c.n for c in quoted], [c.n for c in see_also]))
    text += f"\n\n{texts['sources']}:\n{sources_text}"
    result.text = text.strip()
    return result


def _sibling_score(passage: Passage, score_of: dict[str, float], by_id: dict[str, Passage]) -> float:
    """A quoted piece that search did not return scores as its paragraph's best piece."""
    return max((score for pid, score in score_of.items() if pid in by_id and by_id[pid].ref == passage.ref), default=0.0)


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
