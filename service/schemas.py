"""Request and response bodies of the HTTP API (DESIGN.md, Interfaces), kept apart from the core's models.

Response models ignore fields the core may add later, so the API's shape only
changes here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from kb.answer import Answer, AnswerSection, Citation
from kb.asking import MAX_QUESTION_CHARS
from kb.errors import UnencodableTextError
from kb.text import unencodable_at
from kb.vocabulary import LANGUAGES, SCENARIO_IDS

UNENCODABLE = UnencodableTextError.code  # the pydantic error type is the API's error code (service/errors.py)


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore", from_attributes=True)


# --- errors -----------------------------------------------------------------------


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status, repeated")
    code: str = Field(description="Stable machine-readable code, e.g. invalid_scenario, unknown_passage, not_built")
    message: str = Field(description="What is wrong, for a person")
    field: str | None = Field(default=None, description="The request field at fault, where there is one")
    valid: list[str] | None = Field(default=None, description="The values the field accepts, where they are few")


class ErrorBody(BaseModel):
    """The one error shape of every endpoint."""

    error: ErrorDetail


# --- request bodies --------------------------------------------------------------


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a field's value with where it stands (`answers.device_class`, `answers[key]` for a key)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield f"{path}[key]", key
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}.{i}")


class RequestBody(BaseModel):
    """Base of every JSON request body: each text in it must be text the engine can take (kb/text.py).

    JSON can carry a lone surrogate (`"\\ud800"`), which no UTF-8 encoder takes: it gets a 422 `unencodable_text`
    naming the field, as the core's own check of a question does (`kb ask`), instead of failing deep inside.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _encodable(cls, value: Any, info: ValidationInfo) -> Any:
        for path, text in _strings(value, info.field_name or "body"):
            at = unencodable_at(text)
            if at is not None:
                raise PydanticCustomError(
                    UNENCODABLE,
                    "holds a lone surrogate at character {position}",
                    {"field": path, "position": at, "codepoint": ord(text[at])},
                )
        return value


# --- /api/ask ---------------------------------------------------------------------


class AskRequest(RequestBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "Hvornår skal en ordregiver bruge et innovationspartnerskab?", "scenario": "behov"},
                {"question": "What must a deployer of a high-risk AI system do?", "language": "en", "top_k": 8},
            ]
        },
    )

    # The length is checked by the core (kb.asking.check_question), so the CLI and the API say the same.
    question: str = Field(
        description=f"The question, in Danish or English; 1 to {MAX_QUESTION_CHARS} characters",
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION_CHARS},
    )
    scenario: str | None = Field(
        default=None,
        description="behov, prototype, demo or loesning; default: inferred from the question",
        json_schema_extra={"enum": [*SCENARIO_IDS, None]},
    )
    language: str | None = Field(
        default=None,
        description="Answer language, da or en; default: the question's",
        json_schema_extra={"enum": [*LANGUAGES, None]},
    )
    top_k: int = Field(default=8, ge=1, le=50, description="How many passages the answer may draw on")
    as_of: date | None = Field(default=None, description="Use the versions in force on this date (YYYY-MM-DD)")


class ScenarioOut(_Out):
    id: str | None = Field(description="behov, prototype, demo or loesning; null: no clear scenario (none assumed)")
    label: str = Field(
        description="BEHOV, PROTOTYPE, DEMO or LØSNING (English labels for English answers); "
        "'Intet klart scenarie' / 'No clear scenario' when id is null"
    )
    confidence: float = Field(description="1.0 when chosen by the user")
    inferred: bool
    reason: str


class CitationOut(Citation):
    """A cited passage, as the core gives it (kb.answer.Citation): one definition for the CLI and the API."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)


class AskResponse(_Out):
    """DESIGN's /api/ask object (the same as `kb ask --json`)."""

    answer: str = Field(description="The composed answer; every claim is marked [n]")
    language: str
    scenario: ScenarioOut
    citations: list[CitationOut]
    abstained: bool
    see_also: list[CitationOut] = Field(description="Nearest passages, given when the answer is declined")
    generator: str = Field(description="'extractive', or the model that wrote the answer")
    notes: list[str] = Field(default_factory=list, description="Notes on the versions cited, in the answer's language")
    partial: bool = Field(
        default=False,
        description="True while the knowledge base is still being built (/healthz shows how far): dense search covers "
        "only the texts already embedded, keyword search covers every text",
    )
    not_embedded: list[str] = Field(
        default_factory=list, description="The texts (doc/language/version) not embedded yet, while `partial`"
    )
    sections: list[AnswerSection] = Field(
        default_factory=list, description="The answer's headed parts (direct, scenario, sources); empty when declined"
    )

    @classmethod
    def of(cls, answer: Answer) -> AskResponse:
        return cls.model_validate(answer.model_dump(exclude={"sentences", "question"}))


class StreamDone(BaseModel):
    """Data of the last server-sent event, `done`."""

    abstained: bool
    see_also: list[CitationOut]
    language: str | None = Field(default=None, description="The answer's language (da or en), as in the JSON answer")
    notes: list[str] = Field(default_factory=list, description="Notes on the versions cited, in the answer's language (kb/versions.py)")
    partial: bool = Field(default=False, description="As in the JSON answer: the knowledge base is still being built")
    sections: list[AnswerSection] = Field(default_factory=list, description="As in the JSON answer")


# --- /api/search ------------------------------------------------------------------


class SearchHitOut(_Out):
    ref: str
    passage_id: str
    doc_id: str
    title: str
    heading: str
    language: str
    version: str
    score: float
    text: str
    amended_by: str | None = Field(default=None, description="The act that changed the provision, e.g. 2026/1744")
    version_note: str | None = Field(default=None, description="e.g. amended by Regulation (EU) 2026/1744, in force from 27.7.2026")


# --- /api/passages ----------------------------------------------------------------


class PassageOut(_Out):
    passage_id: str
    ref: str
    doc_id: str
    locator: str
    title: str
    heading: str
    text: str
    language: str
    version: str
    valid_from: date | None = None
    in_force: bool
    page: int | None = None
    kind: str
    jurisdiction: str
    cites: list[str]
    url: str | None = None
    order: int
    piece: int
    text_key: str
    origin: str
    scenarios: list[str] = Field(default_factory=list, description="An upload's scenario tags (empty for the corpus)")
    valid_to: date | None = Field(default=None, description="Last day the version applied")
    amended_by: str | None = Field(default=None, description="The act that changed the provision, e.g. 2026/1744")
    amending_refs: list[str] = Field(default_factory=list, description="The amending act's provisions that changed it")
    version_note: str | None = Field(default=None, description="e.g. amended by Regulation (EU) 2026/1744, in force from 27.7.2026")


class PassageView(BaseModel):
    passage: PassageOut
    neighbours: list[PassageOut] = Field(description="The passages just before and after in the same text")
    parallel: list[PassageOut] = Field(description="The same reference in the other languages")


# --- /api/documents ---------------------------------------------------------------


class VersionOut(_Out):
    version: str
    valid_from: str
    in_force: bool
    languages: list[str]


class DocumentOut(_Out):
    doc_id: str
    title: str
    kind: str
    origin: str = Field(default="corpus", description="corpus (the manifest's texts) or upload (an organisation's own)")
    versions: list[VersionOut]
    passages: dict[str, int] = Field(description="Passages per language")


class DocumentStatusOut(_Out):
    """A document's state: an upload's progress through the background ingest, or a corpus document (always ready)."""

    doc_id: str
    title: str
    kind: str
    origin: str = Field(description="upload or corpus")
    status: str = Field(description="queued, ingesting, ready, failed (see error) or deleting")
    passages: int = Field(description="Passages in the knowledge base once ready")
    error: str | None = Field(default=None, description="Why the ingest failed")
    language: str | None = None
    jurisdiction: str | None = None
    scenarios: list[str] = Field(default_factory=list, description="Scenario tags given with the upload")
    format: str | None = Field(default=None, description="pdf, docx, markdown, html or formex")
    filename: str | None = None
    bytes: int | None = None
    sha256: str | None = Field(default=None, description="SHA-256 of the uploaded file")
    embedded: int | None = Field(default=None, description="Passages embedded so far (progress while ingesting)")
    uploaded_at: str | None = None
    updated_at: str | None = None


class DocumentDeletedOut(BaseModel):
    doc_id: str
    deleted: bool
    passages_removed: int = Field(description="Passages taken out of the knowledge base")


# --- /api/scenarios ---------------------------------------------------------------


class BilingualOut(_Out):
    da: str
    en: str


class BilingualListOut(_Out):
    da: list[str]
    en: list[str]


class ProfileEntryOut(_Out):
    ref: str
    why: BilingualOut


class ScenarioDescriptionOut(_Out):
    id: str
    label: BilingualOut
    description: BilingualOut
    details: BilingualOut
    typical_questions: BilingualListOut
    profile: list[ProfileEntryOut] = Field(description="The provisions that typically matter in the scenario, and why")


# --- /healthz ---------------------------------------------------------------------


class BuildOut(BaseModel):
    """How far the build of the knowledge base is (kb/build_progress.py)."""

    state: str = Field(description="building, interrupted (the build process is gone: `kb serve` resumes it), done or failed")
    phase: str = Field(description="keyword_index (parsing every text, seconds), embedding, done")
    percent: int = Field(description="Passages with their vector, in % of all")
    passages: int = Field(description="Passages in the build (0 until the keyword index is built)")
    embedded: int = Field(description="Of them, passages with their vector")
    texts: int
    texts_done: int
    current_text: str | None = Field(default=None, description="The text being embedded now (doc/language/version)")
    seconds_left: float | None = Field(default=None, description="Estimated from the build's rate so far")
    tokens_per_s: float | None = None
    updated_at: str
    error: str | None = None


class Health(BaseModel):
    status: str = Field(
        description="ok; building (answering: keyword search over every text, dense over those embedded); "
        "partial (as building, but the build stopped: `kb serve` resumes it); or, with status 503, "
        "not_built or store_unavailable"
    )
    passages: int
    message: str | None = None
    build: BuildOut | None = Field(default=None, description="The build's progress, while one runs or did not finish")


# --- /api/clauses -----------------------------------------------------------------


class ClauseLinkOut(BaseModel):
    """A provision named from another: its reference and, where the knowledge base holds it, its heading."""

    ref: str
    doc_id: str
    title: str | None = None
    heading: str | None = None
    known: bool = Field(description="True when the knowledge base holds passages of this provision")


class SimilarProvisionOut(_Out):
    ref: str
    passage_id: str
    doc_id: str
    title: str
    heading: str
    kind: str
    language: str
    score: float = Field(description="Cosine similarity of the provision to the clause")
    text: str


class ChangeSegmentOut(BaseModel):
    text: str
    changed: bool = Field(description="A word the amendment removed (in `old`) or brought (in `new`)")


class ClauseChangeOut(BaseModel):
    """An amended provision's wording before and in force, the changed words marked, and the amending provisions."""

    amended_by: str
    version_note: str | None = None
    old_version: str
    old_language: str
    new_version: str
    old: list[ChangeSegmentOut]
    new: list[ChangeSegmentOut]
    amending: list[ClauseLinkOut]
    superseded_languages: list[str] = Field(description="Languages whose text here is the superseded original, e.g. da")


class TranspositionOut(BaseModel):
    direction: str = Field(description="implemented_by (a directive article) or implements (a udbudsloven §)")
    refs: list[str]
    source: str = Field(description="Where the link comes from: udbudsloven:§-55 (its own text) or heading")
    says: str
    links: list[ClauseLinkOut]


class ClauseView(BaseModel):
    """A provision (article, §, clause) with its parts in each language and its links to other provisions."""

    ref: str
    doc_id: str
    title: str
    kind: str
    heading: str
    language: str = Field(description="The language of `passages`")
    languages: list[str] = Field(description="The languages the provision exists in")
    parent: str | None = Field(default=None, description="The provision this one is part of, e.g. ai-act:art-26")
    passages: list[PassageOut] = Field(description="The provision's passages in `language`, in document order")
    parallel: list[PassageOut] = Field(description="The same provision in the other language, where it exists")
    cites: list[ClauseLinkOut] = Field(description="Provisions this one refers to")
    cited_by: list[ClauseLinkOut] = Field(description="Provisions that refer to this one")
    similar: list[SimilarProvisionOut] = Field(
        description="The most similar provisions in other documents; for a contract or guidance, provisions of law"
    )
    version: str | None = Field(default=None, description="The version of `passages`")
    version_note: str | None = Field(default=None, description="e.g. amended by Regulation (EU) 2026/1744, in force from 27.7.2026")
    change: ClauseChangeOut | None = Field(default=None, description="What an amendment changed, for an amended provision")
    transpositions: list[TranspositionOut] = Field(
        default_factory=list, description="Directive 2014/24/EU <-> udbudsloven: the §§ implementing an article, or the article a § implements"
    )


class ClauseHitOut(SearchHitOut):
    """A clause finder result: a search hit with the kind of its document."""

    kind: str
