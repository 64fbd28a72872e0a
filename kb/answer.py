"""The shape of an answer: text whose claims are marked [n], the citations behind them, and the scenario it is tied to."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kb.passage import Passage
from kb.transpositions import implemented_by, implements
from kb.versions import version_note


class ScenarioInfo(BaseModel):
    """The scenario an answer is tied to: chosen by the user, inferred from the question, or none
    (`id` None: no clear scenario, and the answer assumes none)."""

    id: str | None = Field(description="behov, prototype, demo or loesning; null: no clear scenario")
    label: str = Field(
        description="BEHOV, PROTOTYPE, DEMO or LØSNING (English labels for English answers); "
        "'Intet klart scenarie' / 'No clear scenario' when id is null"
    )
    confidence: float = Field(ge=0.0, le=1.0, description="1.0 when chosen by the user")
    inferred: bool
    reason: str = Field(description="Why this scenario: the user chose it, the words that decided it, or why none")


class Citation(BaseModel):
    """A passage an answer cites as [n]."""

    n: int
    ref: str
    passage_id: str
    doc_id: str
    title: str
    heading: str
    locator: str
    language: str
    version: str
    text: str
    score: float
    url: str | None = None
    in_force: bool = True
    amended_by: str | None = Field(default=None, description="The act that changed the provision, e.g. '2026/1744'")
    version_note: str | None = Field(
        default=None, description="e.g. 'amended by Regulation (EU) 2026/1744, in force from 27.7.2026'"
    )
    implemented_by: list[str] = Field(
        default_factory=list, description="For a directive article: the udbudsloven §§ that implement it"
    )
    implements: list[str] = Field(default_factory=list, description="For a udbudsloven §: the directive articles it implements")

    @classmethod
    def of(cls, n: int, passage: Passage, score: float) -> Citation:
        return cls(
            n=n,
            ref=passage.ref,
            passage_id=passage.passage_id,
            doc_id=passage.doc_id,
            title=passage.title,
            heading=passage.heading,
            locator=passage.locator,
            language=passage.language,
            version=passage.version,
            text=passage.text,
            score=round(float(score), 6),
            url=passage.url,
            in_force=passage.in_force,
            amended_by=passage.amended_by,
            version_note=version_note(passage),
            implemented_by=implemented_by(passage.ref),
            implements=implements(passage.ref),
        )


class AnswerSentence(BaseModel):
    """One sentence of an answer and the citation numbers it rests on (it is taken from those passages)."""

    text: str
    citations: list[int]
    section: str = Field(description="'answer' (the direct answer) or 'scenario' (what it means in the scenario)")


class AnswerSection(BaseModel):
    """One headed part of an answer (kb.answering.Section), so a face can show the parts as parts."""

    kind: str = Field(description="'direct' (the answer), 'scenario' (what it means in the scenario) or 'sources'")
    heading: str = Field(description="The part's heading in the answer's language; empty for the direct answer")
    text: str = Field(description="The part's text as it stands in `answer`, claims marked [n]")
    citations: list[int] = Field(default_factory=list, description="The numbers the part cites (sources: those quoted)")
    see_also: list[int] = Field(default_factory=list, description="Sources only: numbers listed without being quoted")


class Answer(BaseModel):
    """DESIGN's /api/ask object, plus the sentences and see-also passages the faces use."""

    question: str
    answer: str = Field(description="The composed answer; every claim is marked [n]")
    language: str
    scenario: ScenarioInfo
    citations: list[Citation]
    abstained: bool
    sentences: list[AnswerSentence] = Field(default_factory=list)
    see_also: list[Citation] = Field(default_factory=list, description="Nearest passages, shown when the answer is declined")
    generator: str = Field(default="extractive", description="'extractive' (default) or the LLM that wrote the answer")
    notes: list[str] = Field(
        default_factory=list,
        description="Notes on the versions cited, in the answer's language: e.g. that the Danish text is the "
        "original and the wording in force of an amended provision is given in English",
    )
    partial: bool = Field(
        default=False, description="True while the knowledge base is still being built: some texts have no vectors yet"
    )
    not_embedded: list[str] = Field(
        default_factory=list, description="Those texts (doc/language/version): found by keyword search only, for now"
    )
    sections: list[AnswerSection] = Field(default_factory=list, description="The answer's headed parts, in order")
