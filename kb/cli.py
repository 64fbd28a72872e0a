"""`kb`: the command line, and the composition root that ties ingest, the knowledge base, the service and eval together.

Heavy imports sit inside the commands so `kb --help` starts fast. Results go to
stdout (JSON with `--json`); progress and errors go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

app = typer.Typer(
    help="Knowledge base of law, guidance and contracts for buying and selling clinical AI in Denmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
DocOpt = Annotated[Optional[str], typer.Option("--doc", help="Only this doc id (e.g. udbudsloven, ai-act).")]
KindOpt = Annotated[Optional[str], typer.Option("--kind", help="Only this kind: regulation, directive, act, contract, guidance.")]
LangOpt = Annotated[Optional[str], typer.Option("--lang", help="Only passages in this language (da, en).")]


def _err(message: str, code: int = 1) -> None:
    """One red line on stderr and a non-zero exit: no tracebacks for the user."""
    from rich.console import Console
    from rich.markup import escape

    # escape: "documents[udbudsloven]" is a field path, not rich markup; soft_wrap: no line breaks inside it
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _kb() -> KnowledgeBase:
    from kb.knowledge_base import KnowledgeBase
    from kb.settings import get_settings

    return KnowledgeBase(get_settings())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command()
def ingest(
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus folder (default: KB_CORPUS_DIR).")] = None,
    only: Annotated[Optional[str], typer.Option("--only", help="Comma-separated doc ids to (re)ingest.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the knowledge base from the corpus: parse, split, embed what changed, index.

    Incremental: unchanged texts are skipped, changed passages re-embedded, vanished ones removed.
    Safe to interrupt: a rerun finishes the job. Exits non-zero when any text failed.
    """
    from ingest.manifest import ManifestError
    from ingest.pipeline import ingest as run_ingest
    from kb.cli_progress import IngestProgressBar, print_ingest_summary

    kb = _kb()
    corpus_dir = (corpus or kb.settings.corpus_dir).resolve()
    if not corpus_dir.is_dir():
        _err(f"corpus folder not found: {corpus_dir} (set KB_CORPUS_DIR or pass --corpus)")
    selected = {s.strip() for s in only.split(",") if s.strip()} if only else None
    try:
        with IngestProgressBar() as bar:
            report = run_ingest(kb, corpus_dir, kb.settings.manifest_path, only=selected, progress=bar)
    except ManifestError as exc:
        _err(str(exc))
    if as_json:
        _print_json(report.as_dict())
    else:
        print_ingest_summary(report)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in Danish or English.")],
    doc: DocOpt = None,
    kind: KindOpt = None,
    lang: LangOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many passages.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search (dense + BM25, reciprocal rank fusion) over the passages in force."""
    from kb.errors import KBError

    if not query.strip():
        _err("the query is empty")
    try:
        hits = _kb().search(query, k=k, doc=doc, kind=kind, language=lang)
    except KBError as exc:
        _err(str(exc))
    if as_json:
        _print_json([h.summary() for h in hits])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, expand=True)
    for col in ("#", "ref", "heading", "lang", "score", "text"):
        table.add_column(col, overflow="fold", ratio=3 if col == "text" else None)
    for i, hit in enumerate(hits, 1):
        p = hit.passage
        snippet = p.text[:160] + ("…" if len(p.text) > 160 else "")
        table.add_row(str(i), p.ref, p.heading[:60], p.language, f"{hit.score:.4f}", snippet)
    Console().print(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in Danish or English.")],
    scenario: Annotated[
        Optional[str], typer.Option("--scenario", help="behov, prototype, demo or loesning (default: inferred from the question).")
    ] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Answer language, da or en (default: the question's).")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Use the versions in force on this date (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from cited passages, tied to a procurement scenario; declines when the corpus holds no answer."""
    from datetime import date

    from kb.errors import KBError

    try:
        when = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        _err(f"--as-of must be a date like 2024-06-30, not {as_of!r}")
    try:
        answer = _kb().ask(question, scenario=scenario, language=lang, as_of=when)
    except KBError as exc:
        _err(str(exc))
    if as_json:
        _print_json(answer.model_dump(mode="json", exclude={"sentences", "question"}))
        return
    from rich.console import Console

    console = Console()
    how = "inferred" if answer.scenario.inferred else "chosen"
    console.print(
        f"[bold]{answer.scenario.label}[/] ({how}, confidence {answer.scenario.confidence:.2f}: {answer.scenario.reason})",
        highlight=False,
    )
    console.print(answer.answer, highlight=False, markup=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the JSON API (docs at /docs) with uvicorn."""
    from service.server import run

    run(host=host, port=port, workers=workers)


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Documents, versions, and passages per document and language."""
    from kb.errors import KBError

    try:
        data = _kb().stats()
    except KBError as exc:
        _err(str(exc))
    if as_json:
        _print_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{data['passages']} passages")
    for col in ("doc id", "kind", "versions (in force *)", "passages per language"):
        table.add_column(col)
    for doc_id, doc in data["documents"].items():
        versions = ", ".join(v["version"] + ("*" if v["in_force"] else "") for v in doc["versions"])
        per_lang = ", ".join(f"{lang}: {n}" for lang, n in sorted(doc["passages"].items()))
        table.add_row(doc_id, doc["kind"], versions, per_lang)
    Console().print(table)


@app.command(name="eval")
def evaluate(
    dataset: Annotated[Path, typer.Option("--dataset", help="A JSON Lines dataset in the DESIGN format.")],
    systems: Annotated[
        Optional[str], typer.Option("--systems", help="Comma-separated: ours, hybrid-no-scenario, bm25, dense, naive-llamaindex.")
    ] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Folder for the Markdown/HTML report with plots.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure retrieval and grounding on a dataset, for our system and the baselines beside it."""
    from eval.cli_command import run_eval

    selected = [s.strip() for s in systems.split(",") if s.strip()] if systems else None
    code = run_eval(dataset, selected, as_json, report)
    if code:
        raise typer.Exit(code)


def ingest_corpus(kb: KnowledgeBase, corpus_dir: Path, manifest: Path, only: set[str] | None = None) -> Any:
    """The ingest pipeline, for callers that may not import ingest/ themselves (eval's benchmarks)."""
    from ingest.pipeline import ingest as run_ingest

    return run_ingest(kb, corpus_dir, manifest, only=only)


def main() -> None:
    """Run the CLI; an unexpected error is one red line (KB_DEBUG=1 shows the traceback)."""
    try:
        app()
    except Exception as exc:  # the last line of defence: users get a sentence, not a traceback
        if os.environ.get("KB_DEBUG"):
            raise
        from rich.console import Console

        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))} (KB_DEBUG=1 shows the traceback)", highlight=False
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
