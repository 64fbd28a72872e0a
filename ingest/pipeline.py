"""Incremental, crash-safe ingest: manifest texts -> passages -> vectors in the store -> the keyword index.

The build goes in two passes so a service can answer while it runs: first every text is parsed and stored, each
passage that needs a new vector with a placeholder (marked pending in the store), and the keyword index is built
over all of them (seconds: no embedding); then the texts are embedded one by one, and after each the index stamp
is written again, so service workers pick up the new vectors (dense search skips the pending passages meanwhile).
The ingest's progress goes to KB_DATA_DIR/build-progress.json (kb/build_progress.py) as well as to `progress`.

Why it is safe to kill at any moment: passage ids are stable and each write is
idempotent (a passage is replaced whole, under its id); a text's ingest state
is recorded only after all its passages are written and its stale ones
deleted; the keyword index is rebuilt whenever it does not match the store's
contents, and swapped in whole. A rerun therefore finishes what was cut off and
ends in the same store as one uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Protocol

from ingest.manifest import DocumentSpec, Manifest, TextSpec, load_manifest, resolve_files
from ingest.parsers import get_parser
from ingest.splitter import SPLITTER_VERSION, SplitError, split_units
from ingest.uploads.registry import Uploads
from ingest.units import ParseError
from ingest.writer import write_passages
from kb.build_progress import BuildProgressFile
from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.passage import Passage
from kb.timing import stage
from kb.versions import TextInfo, settle_in_force

@dataclass
class TextReport:
    """What happened to one text."""

    key: str
    doc_id: str
    language: str
    version: str
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    unchanged: bool = False
    error: str | None = None


@dataclass
class IngestReport:
    """What one `kb ingest` did, text by text."""

    texts: list[TextReport] = field(default_factory=list)
    pruned: int = 0
    keyword_index_rebuilt: bool = False
    seconds: float = 0.0
    settled: int = 0  # passages whose in_force the version rule changed (kb/versions.py)

    @property
    def failed(self) -> list[TextReport]:
        return [t for t in self.texts if t.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts": [t.__dict__ for t in self.texts],
            "pruned": self.pruned,
            "keyword_index_rebuilt": self.keyword_index_rebuilt,
            "seconds": round(self.seconds, 2),
            "failed": len(self.failed),
            "settled": self.settled,
        }


class Progress(Protocol):
    """What the ingest tells whoever shows progress (the CLI's rich bars, the build progress file)."""

    def texts(self, total: int) -> None: ...
    def text_started(self, key: str, to_embed: int) -> None: ...
    def embedded(self, count: int, tokens: int) -> None: ...
    def text_done(self, report: TextReport) -> None: ...


class _Silent:
    def texts(self, total: int) -> None: ...
    def text_started(self, key: str, to_embed: int) -> None: ...
    def embedded(self, count: int, tokens: int) -> None: ...
    def text_done(self, report: TextReport) -> None: ...


class _Both:
    """Tell two listeners the same (the caller's progress and the build progress file); a listener may leave out
    a call it has no use for (`indexed(passages, to_embed)`, after the first pass, is the build file's)."""

    def __init__(self, *listeners: Any) -> None:
        self.listeners = listeners

    def __getattr__(self, name: str) -> Callable[..., None]:
        def call(*args: Any) -> None:
            for listener in self.listeners:
                method = getattr(listener, name, None)
                if method is not None:
                    method(*args)

        return call


def _fingerprint(doc: DocumentSpec, text: TextSpec, files: list[Path], max_chars: int, model: str) -> str:
    """What a text's passages depend on: its files' bytes, its manifest entry, the splitter and the model."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [
                doc.model_dump(mode="json", exclude={"texts"}),
                # valid_to only where set: the fingerprints of texts without one stay as they were
                text.model_dump(mode="json", exclude=None if text.valid_to else {"valid_to"}),
                SPLITTER_VERSION,
                max_chars,
                model,
            ],
            sort_keys=True,
        ).encode()
    )
    for path in files:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class _State:
    """Per-text fingerprints of finished ingests, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def set(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def parse_text(doc: DocumentSpec, text: TextSpec, files: list[Path], max_chars: int, origin: str = "corpus") -> list[Passage]:
    """Read one text with its parser and split it into passages; ParseError/SplitError on failure."""
    parser = get_parser(text.parser)
    units = list(parser(files, dict(text.options)))
    if not units:
        raise ParseError(files[0], "no text found in the file(s)")
    if text.units is not None:
        units = [u for u in units if any(fnmatch(u.locator, pattern) for pattern in text.units)]
    return split_units(units, doc, text, max_chars=max_chars, origin=origin)


def ingest(
    kb: KnowledgeBase,
    corpus_dir: Path,
    manifest_path: Path,
    only: set[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Bring the store in line with the manifest's texts; texts that fail are reported and leave the store untouched."""
    started = time.perf_counter()
    report = IngestReport()
    manifest = load_manifest(manifest_path)
    documents = manifest.select(only)
    with kb.writing():  # the whole run: an upload waits rather than racing it
        build = BuildProgressFile(kb.settings.build_progress_file)
        listener: Any = _Both(progress, build) if progress is not None else build
        listener.texts(sum(len(d.texts) for d in documents))
        try:
            _ingest_texts(kb, corpus_dir, manifest_path, manifest, documents, only, listener, report)
        except Exception as exc:
            build.finished(error=f"{type(exc).__name__}: {exc}")
            raise
        build.finished()
    report.seconds = time.perf_counter() - started
    return report


def _ingest_texts(
    kb: KnowledgeBase,
    corpus_dir: Path,
    manifest_path: Path,
    manifest: Manifest,
    documents: list[DocumentSpec],
    only: set[str] | None,
    progress: Progress,
    report: IngestReport,
) -> None:
    """The body of `ingest`, run while holding the knowledge base's write lock."""
    state = _State(kb.settings.state_file)
    model = kb.embedder.model_name
    kb.store.set_embedding_model(model)
    max_chars = kb.settings.max_passage_chars
    uploaded = {record.doc_id for record in Uploads(kb.settings.data_dir).all()}
    stored: list[tuple[TextReport, list[Passage], Match, str]] = []  # what the second pass embeds
    for doc in documents:
        for text in doc.texts:
            key = text.key(doc.doc_id)
            entry = TextReport(key=key, doc_id=doc.doc_id, language=text.language, version=text.version)
            report.texts.append(entry)
            where = Match(text_key=key)
            if doc.doc_id in uploaded:  # its passages would mix with the upload's under one doc id
                entry.error = (
                    f"{manifest_path}: documents[{doc.doc_id}]: the doc id belongs to an uploaded document; "
                    f"rename it in the manifest or remove the upload (kb ingest --remove {doc.doc_id})"
                )
                progress.text_done(entry)
                continue
            try:
                files = resolve_files(text, corpus_dir)
                fingerprint = _fingerprint(doc, text, files, max_chars, model)
                done = state.get(key)
                if done and done.get("fingerprint") == fingerprint and len(kb.store.hashes(where)) == done.get("passages"):
                    entry.passages, entry.unchanged = done["passages"], True
                    progress.text_done(entry)
                    continue
                with stage("parse"):
                    passages = parse_text(doc, text, files, max_chars)
            except (ParseError, SplitError, FileNotFoundError) as exc:
                entry.error = str(exc)
                progress.text_done(entry)
                continue
            except Exception as exc:  # a parser's bug must not stop the other texts
                entry.error = f"{text.files[0]}: {type(exc).__name__}: {exc}"
                progress.text_done(entry)
                continue
            entry.passages = len(passages)
            state.set(key, None)  # not finished until the second pass has embedded it
            _, entry.reused, entry.removed = write_passages(kb, passages, where, placeholders=True)
            stored.append((entry, passages, where, fingerprint))

    # law-in-force: which text is in force, per provision across languages, once every text is in (kb/versions.py)
    texts = [TextInfo(t.key(d.doc_id), d.doc_id, t.language, t.valid_from, t.in_force) for d in documents for t in d.texts]
    report.settled = settle_in_force(kb.store, model, texts)
    if only is None:
        known = [t.key(d.doc_id) for d in manifest.documents for t in d.texts]
        orphans = list(kb.store.hashes(Match(origin="corpus", not_text_key=tuple(known))))
        kb.store.delete(orphans)
        report.pruned = len(orphans)
    # keyword search over every text from here on; dense search over what has its vector
    with stage("keyword_index"):
        report.keyword_index_rebuilt = kb.refresh_keyword_index()
    keys = {entry.key for entry, *_ in stored}
    to_embed = sum(1 for key in kb.store.pending(Match(origin="corpus")).values() if key in keys) if stored else 0
    progress.indexed(sum(t.passages for t in report.texts if not t.error), to_embed)

    for entry, passages, where, fingerprint in stored:
        entry.embedded, reused, _ = write_passages(
            kb,
            passages,
            where,
            on_embedded=progress.embedded,
            on_start=lambda n, key=entry.key: progress.text_started(key, n),
        )
        entry.reused += reused
        state.set(entry.key, {"fingerprint": fingerprint, "passages": len(passages)})
        with stage("index_stamp"):
            kb.refresh_keyword_index()  # a new index stamp: workers pick up this text's vectors
        progress.text_done(entry)
    if stored:  # the texts just embedded were placeholders when they were settled above: settle them now
        settled = settle_in_force(kb.store, model, texts)
        if settled:
            report.settled += settled
            kb.refresh_keyword_index()
