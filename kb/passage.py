"""The passage: the unit the knowledge base stores, retrieves and cites."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, computed_field

_SLUG = re.compile(r"[^a-z0-9]+")


def version_slug(version: str) -> str:
    """A version label as it appears in passage ids: "LBK 116/2025" -> "lbk-116-2025"."""
    ascii_text = unicodedata.normalize("NFKD", version).encode("ascii", "ignore").decode().lower()
    return _SLUG.sub("-", ascii_text).strip("-") or "v"


def make_passage_id(ref: str, language: str, version: str, piece: int = 1) -> str:
    """Stable id of one passage: reference, language, version, and the piece number of a split unit."""
    base = f"{ref}/{language}/{version_slug(version)}"
    return base if piece == 1 else f"{base}~{piece}"


class Passage(BaseModel):
    """A piece of law, contract or guidance with its legal address and provenance."""

    passage_id: str
    ref: str = Field(description="Citation reference, e.g. 'ai-act:art-26.1'; shared by the language versions.")
    doc_id: str
    locator: str
    title: str = Field(description="Title of the document.")
    heading: str = Field(description="Heading of the unit the passage belongs to, carried into every piece.")
    text: str
    language: str
    version: str
    valid_from: date | None = None
    valid_to: date | None = Field(default=None, description="Last day the version applied; None while it applies.")
    in_force: bool = True
    page: int | None = None
    kind: str
    jurisdiction: str
    cites: list[str] = Field(default_factory=list, description="References the text cites, resolved.")
    url: str | None = None
    order: int = Field(default=0, description="Position in its text, for neighbours.")
    piece: int = 1
    text_key: str = Field(description="The text (doc/language/version) the passage was cut from.")
    origin: str = Field(default="corpus", description="'corpus' for manifest texts, 'upload' for an organisation's own.")
    scenarios: list[str] = Field(
        default_factory=list, description="Scenarios an uploaded document was tagged with: it joins their profiles."
    )
    amended_by: str | None = Field(
        default=None, description="The act that changed this provision in a consolidated version, e.g. '2026/1744'."
    )
    amending_refs: list[str] = Field(
        default_factory=list, description="The amending act's provisions that did it, e.g. 'digital-omnibus-ai:art-1.40'."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version_note(self) -> str | None:
        """What the citation and passage view say beside the version: "amended by Regulation (EU) 2026/1744, in
        force from 27.7.2026" (kb/versions.py); None for a provision no amendment changed."""
        from kb.versions import version_note

        return version_note(self)

    @property
    def indexed_text(self) -> str:
        """What is embedded and keyword-indexed: the heading carries the article's subject into every piece."""
        return f"{self.heading}\n{self.text}"

    def content_hash(self, model: str) -> str:
        """Hash of what the vector depends on: the indexed text and the embedding model."""
        return hashlib.sha256(f"{model}\x00{self.indexed_text}".encode()).hexdigest()[:32]

    def record_hash(self, model: str) -> str:
        """Hash of the whole stored record: a change of metadata alone rewrites the record but reuses the vector."""
        payload = json.dumps([self.content_hash(model), self.text, self.to_metadata()], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def to_metadata(self) -> dict[str, Any]:
        """Flat metadata for the vector store (scalars only)."""
        return {
            "passage_id": self.passage_id,
            "ref": self.ref,
            "doc_id": self.doc_id,
            "locator": self.locator,
            "unit": self.locator.split(".")[0],
            "title": self.title,
            "heading": self.heading,
            "language": self.language,
            "version": self.version,
            "valid_from": self.valid_from.isoformat() if self.valid_from else "",
            "in_force": self.in_force,
            "page": self.page if self.page is not None else -1,
            "kind": self.kind,
            "jurisdiction": self.jurisdiction,
            "cites": " ".join(self.cites),
            "url": self.url or "",
            "order": self.order,
            "piece": self.piece,
            "text_key": self.text_key,
            "origin": self.origin,
            # only when tagged, so the records (and record hashes) of untagged passages stay as they were
            **({"scenarios": " ".join(self.scenarios)} if self.scenarios else {}),
            # version facts only where they apply, for the same reason
            **({"valid_to": self.valid_to.isoformat()} if self.valid_to else {}),
            **({"amended_by": self.amended_by} if self.amended_by else {}),
            **({"amending_refs": " ".join(self.amending_refs)} if self.amending_refs else {}),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], text: str) -> Passage:
        """Rebuild a passage from what the vector store gives back."""
        page = metadata.get("page", -1)
        return cls(
            passage_id=metadata["passage_id"],
            ref=metadata["ref"],
            doc_id=metadata["doc_id"],
            locator=metadata["locator"],
            title=metadata.get("title", ""),
            heading=metadata.get("heading", ""),
            text=text,
            language=metadata["language"],
            version=metadata.get("version", ""),
            valid_from=metadata.get("valid_from") or None,
            in_force=bool(metadata.get("in_force", True)),
            page=None if page in (-1, None) else int(page),
            kind=metadata.get("kind", ""),
            jurisdiction=metadata.get("jurisdiction", ""),
            cites=[c for c in str(metadata.get("cites", "")).split(" ") if c],
            url=metadata.get("url") or None,
            order=int(metadata.get("order", 0)),
            piece=int(metadata.get("piece", 1)),
            text_key=metadata.get("text_key", ""),
            origin=metadata.get("origin", "corpus"),
            scenarios=[s for s in str(metadata.get("scenarios", "")).split(" ") if s],
            valid_to=metadata.get("valid_to") or None,
            amended_by=metadata.get("amended_by") or None,
            amending_refs=[r for r in str(metadata.get("amending_refs", "")).split(" ") if r],
        )
