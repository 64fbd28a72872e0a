"""The corpus manifest: which texts make up the knowledge base, how each is read, and which version is in force."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from kb.errors import ManifestError as ManifestError  # re-exported
from kb.passage import version_slug
from kb.vocabulary import Jurisdiction, Kind



class TextSpec(BaseModel):
    """One language of one version of a document, read from `files` by `parser`."""

    language: str = Field(pattern=r"^[a-z]{2}$")
    version: str = Field(min_length=1)
    valid_from: date
    valid_to: date | None = Field(default=None, description="Last day this version applied (the day before its successor).")
    in_force: bool
    parser: str
    files: list[str] = Field(min_length=1)
    url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    units: list[str] | None = Field(
        default=None,
        description="Keep only units whose locator matches one of these patterns (fnmatch, e.g. 'art-2?', 'annex-iii'); "
        "for a partial knowledge base such as the test subset.",
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> TextSpec:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self

    def key(self, doc_id: str) -> str:
        """The text's key in the store: doc id, language and version."""
        return f"{doc_id}/{self.language}/{version_slug(self.version)}"


class DocumentSpec(BaseModel):
    """A document under one doc id, with its texts (languages and versions)."""

    doc_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    title_da: str | None = Field(
        default=None, description="The Danish texts' title, shown for them (the passages keep `title`: no re-ingest)"
    )
    kind: Kind
    jurisdiction: Jurisdiction
    url: str | None = None
    texts: list[TextSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_version_in_force(self) -> DocumentSpec:
        for language in {t.language for t in self.texts}:
            in_force = [t.version for t in self.texts if t.language == language and t.in_force]
            if len(in_force) > 1:
                raise ValueError(f"{self.doc_id}: more than one version in force for {language!r}: {in_force}")
        keys = [t.key(self.doc_id) for t in self.texts]
        if len(keys) != len(set(keys)):
            raise ValueError(f"{self.doc_id}: two texts with the same language and version")
        return self


class Manifest(BaseModel):
    """Every document of the corpus."""

    documents: list[DocumentSpec]

    @model_validator(mode="after")
    def _unique_ids(self) -> Manifest:
        ids = [d.doc_id for d in self.documents]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"doc ids listed twice: {dupes}")
        return self

    def document(self, doc_id: str) -> DocumentSpec:
        for doc in self.documents:
            if doc.doc_id == doc_id:
                return doc
        raise KeyError(doc_id)

    def select(self, only: set[str] | None) -> list[DocumentSpec]:
        """The documents named in `only` (all when None); unknown ids raise ManifestError listing the known ones."""
        if not only:
            return list(self.documents)
        known = {d.doc_id for d in self.documents}
        unknown = sorted(only - known)
        if unknown:
            raise ManifestError(f"unknown doc id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return [d for d in self.documents if d.doc_id in only]


def load_manifest(path: Path) -> Manifest:
    """Read and check the manifest; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _field_path(data, err["loc"])
            problems.append(f"{where}: {err['msg']}")
        raise ManifestError(f"{path}: " + "; ".join(problems)) from None


def _field_path(data: Any, loc: tuple[Any, ...]) -> str:
    """A readable field path, naming documents by doc id: documents[udbudsloven].texts[1].valid_from."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            entry = node[item] if item < len(node) else None
            label = entry.get("doc_id") if isinstance(entry, dict) and "doc_id" in entry else item
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
            node = entry
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def resolve_files(text: TextSpec, corpus_dir: Path) -> list[Path]:
    """The text's files, globs expanded (sorted within each pattern); a pattern matching nothing raises FileNotFoundError."""
    out: list[Path] = []
    for pattern in text.files:
        if any(ch in pattern for ch in "*?["):
            matches = sorted(corpus_dir.glob(pattern))
        else:
            matches = [corpus_dir / pattern] if (corpus_dir / pattern).exists() else []
        if not matches:
            raise FileNotFoundError(f"{corpus_dir / pattern}: file listed in the manifest is missing")
        out.extend(matches)
    return out
