"""The shape of an answer: text whose claims are marked [n], the citations behind them, and the scenario it is tied to."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kb.passage import Passage


class ScenarioInfo(BaseModel):
    """The scenario an answer is tied to: chosen by the user, or inferred from the question."""

    id: str = Field(description="behov, prototype, demo or loesning")
    label: str = Field(description="BEHOV, PROTOTYPE, DEMO or LØSNING (English labels for English answers)")
    confidence: float = Field(ge=0.0, le=1.0, description="1.0 when chosen by the user")
    inferred: bool
    reason: str = Field(description="Why this scenario: the user chose it, or the cues that decided it")


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
        )


class AnswerSentence(BaseModel):
    """One sentence of an answer and the citation numbers it rests on (it is taken from those passages)."""

    text: str
    citations: list[int]
    section: str = Field(description="'answer' (the direct answer) or 'scenario' (what it means in the scenario)")


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
    partial: bool = Field(
        default=False, description="True while the knowledge base is still being built: some texts have no vectors yet"
    )
    not_embedded: list[str] = Field(
        default_factory=list, description="Those texts (doc/language/version): found by keyword search only, for now"
    )
