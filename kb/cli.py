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

from kb.vocabulary import LANGUAGES


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


def _show_writer_waits() -> None:
    """Say on stderr when a write waits for another writer (a service upload, a second ingest), not hang silently."""
    import logging

    logger = logging.getLogger("kb.knowledge_base")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command()
def ingest(
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus folder (default: KB_CORPUS_DIR).")] = None,
    only: Annotated[Optional[str], typer.Option("--only", help="Comma-separated doc ids to (re)ingest.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Take in an organisation's own document instead (pdf, docx, md, html, Formex xml).")
    ] = None,
    doc_id: Annotated[str | None, typer.Option("--doc-id", help="With --file: its new doc id (lowercase, digits, '-').")] = None,
    title: Annotated[str | None, typer.Option("--title", help="With --file: the document's title.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="With --file: regulation, directive, act, contract or guidance.")] = "guidance",
    lang: Annotated[str, typer.Option("--lang", help="With --file: da or en.")] = "da",
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="With --file: DK or EU.")] = "DK",
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="With --file: a scenario it matters in (repeatable).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="With --file: replace an upload of this doc id that holds another file.")] = False,
    remove: Annotated[str | None, typer.Option("--remove", help="Remove this uploaded document and its passages.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the knowledge base from the corpus: parse, split, embed what changed, index.

    Incremental: unchanged texts are skipped, changed passages re-embedded, vanished ones removed.
    Safe to interrupt: a rerun finishes the job. Exits non-zero when any text failed.
    With --file, takes in one uploaded document (as POST /api/documents does); --remove takes one out.
    Uploaded documents are never touched by a corpus ingest.
    """
    _show_writer_waits()
    if file is not None or remove is not None:
        _ingest_upload(file, doc_id, title, kind, lang, jurisdiction, scenario or [], replace, remove, as_json)
        return
    from ingest.manifest import ManifestError
    from ingest.pipeline import ingest as run_ingest
    from kb.cli_progress import IngestProgressBar, print_ingest_summary
    from kb.errors import KBError

    kb = _kb()
    corpus_dir = (corpus or kb.settings.corpus_dir).resolve()
    if not corpus_dir.is_dir():
        _err(f"corpus folder not found: {corpus_dir} (set KB_CORPUS_DIR or pass --corpus)")
    selected = {s.strip() for s in only.split(",") if s.strip()} if only else None
    try:
        with IngestProgressBar() as bar:
            report = run_ingest(kb, corpus_dir, kb.settings.manifest_path, only=selected, progress=bar)
    except (ManifestError, KBError) as exc:  # KBError: e.g. the Chroma server (KB_CHROMA_URL) is not reachable
        _err(str(exc))
    if as_json:
        _print_json(report.as_dict())
    else:
        print_ingest_summary(report)
    if report.failed:
        raise typer.Exit(1)


def _ingest_upload(
    file: Path | None,
    doc_id: str | None,
    title: str | None,
    kind: str,
    lang: str,
    jurisdiction: str,
    scenarios: list[str],
    replace: bool,
    remove: str | None,
    as_json: bool,
) -> None:
    """`kb ingest --file` / `--remove`: the upload service of the API (ingest/uploads/service.py), from the command line."""
    import getpass

    from ingest.uploads.errors import UploadError
    from ingest.uploads.registry import describe
    from ingest.uploads.service import DocumentFields, UploadService
    from kb.errors import KBError
    from service.audit import AuditLog
    from ingest.uploads.checks import UploadLimits

    kb = _kb()
    settings = kb.settings.service
    audit = AuditLog(settings.audit_log or kb.settings.data_dir / "audit.jsonl")
    service = UploadService(kb, UploadLimits.of(settings), audit, status_of=_refusal_status)
    who = f"cli:{getpass.getuser()}"
    try:
        if remove is not None:
            removed = service.delete(remove, who)
            if as_json:
                _print_json({"doc_id": remove, "deleted": True, "passages_removed": removed})
            else:
                print(f"removed {remove}: {removed} passages", file=sys.stderr)
            return
        assert file is not None
        if not doc_id or not title:
            _err("--file needs --doc-id and --title")
        if not file.is_file():
            _err(f"--file {file}: no such file")
        fields = DocumentFields(doc_id, title, kind, lang, jurisdiction, tuple(scenarios))
        done = service.put_file(file, fields, who, replace=replace)
    except UploadError as exc:
        _err(_refusal_message(exc, remove, doc_id))
    except KBError as exc:
        _err(str(exc))
    assert done is not None
    if as_json:
        _print_json(describe(done))
    else:
        print(f"{doc_id}: {done.status}, {done.passages} passages" + (f" ({done.error})" if done.error else ""), file=sys.stderr)
    if done.status != "ready":
        raise typer.Exit(1)


def _refusal_status(outcome: str, code: str | None) -> int | None:
    """The status the audit log records for an outcome of the command line: none is an HTTP answer, but a
    refusal is recorded with the status the API gives it."""
    from service.errors import upload_status

    return upload_status(outcome, code) if outcome == "rejected" else None


def _refusal_message(exc: Exception, remove: str | None, doc_id: str | None) -> str:
    """A refused upload or removal in the command line's words: its options, where the service names the API's fields."""
    code = getattr(exc, "code", None)
    if remove is not None and code == "corpus_document":
        return f"--remove {remove}: a corpus document: change the manifest instead"
    if remove is not None and code == "unknown_document":
        return f"--remove {remove}: not an uploaded document"
    if code == "replace_needed":
        return f"--doc-id {doc_id} is already uploaded with another file; pass --replace to replace it"
    return str(exc)


@app.command()
def apikey(
    name: Annotated[str, typer.Argument(help="Who the key is for; the audit log names it (e.g. 'rh-jura').")],
    role: Annotated[str, typer.Option("--role", help="write (may upload and delete documents) or read.")] = "write",
) -> None:
    """Make an API key: prints the key (give it to its holder, once) and the KB_API_KEYS entry, which holds only its hash."""
    import re

    from service.auth import new_key, settings_entry

    if role not in ("write", "read"):
        _err(f"--role must be write or read, not {role!r}")
    if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", name):
        _err("the name may hold letters, digits and . _ @ - (at most 64)")
    key = new_key()
    _print_json({"key": key, "entry": settings_entry(key, role, name)})  # type: ignore[arg-type]
    print("add the entry to KB_API_KEYS (comma-separated); the key is not stored anywhere", file=sys.stderr)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in Danish or English.")],
    doc: DocOpt = None,
    kind: KindOpt = None,
    lang: LangOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many passages.")] = 10,
    changed_since: Annotated[
        Optional[str],
        typer.Option("--changed-since", help="Only provisions an amendment applying from this date on changed (YYYY-MM-DD)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search (dense + BM25, reciprocal rank fusion) over the passages in force."""
    from datetime import date

    from kb.errors import KBError

    if not query.strip():
        _err("the query is empty")
    try:
        since = date.fromisoformat(changed_since) if changed_since else None
    except ValueError:
        _err(f"--changed-since must be a date like 2026-01-01, not {changed_since!r}")
    try:
        if since is not None:  # law-in-force (kb/versions.py)
            from kb.versions import search_changed

            hits = search_changed(_kb(), query, since, k=k, doc=doc, kind=kind, language=lang)
        else:
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
    for note in answer.notes:  # law-in-force: the version behind an amended provision
        console.print(f"[italic]{note}[/]", highlight=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Worker processes; they share the store and pick up each new ingest.")
    ] = 1,
    build: Annotated[
        bool, typer.Option("--build", help="Also run `kb ingest` in the background when the knowledge base is built (new texts).")
    ] = False,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Never start a build: a knowledge base that was never built answers 503.")
    ] = False,
) -> None:
    """Serve the JSON API (docs at /docs) with uvicorn, at once.

    A knowledge base that was never built, or whose build stopped, is built in the background (`kb ingest` in its
    own process, under the one-writer lock) while the service answers: keyword search over every text within a
    minute, dense search over each text as it is embedded. /healthz shows the progress.
    """
    from kb.errors import InvalidSettingError
    from kb.settings import get_settings
    from service.server import run

    if build and no_build:
        _err("--build and --no-build exclude each other")
    try:  # every setting read before anything starts (the LLM's and the service's groups too): a bad one stops here, named
        settings = get_settings()
    except InvalidSettingError as exc:
        _err(str(exc))
    builder = _start_build(settings) if not no_build and (build or _needs_build(settings)) else None
    try:
        run(host=host, port=port, workers=workers)
    finally:
        if builder is not None and builder.poll() is None:
            builder.terminate()  # the build resumes where it stopped on the next `kb serve` or `kb ingest`
            builder.wait(timeout=30)


def _needs_build(settings: Any) -> bool:
    """Never built (no index stamp), still embedding (the stamp says so), or a build that stopped midway."""
    from kb.build_progress import read_build_progress
    from kb.indexing import PENDING_MARK

    try:
        stamp = settings.index_stamp_file.read_text().strip()
    except FileNotFoundError:
        stamp = ""
    progress = read_build_progress(settings.build_progress_file)
    return not stamp or PENDING_MARK in stamp or (progress is not None and progress.state == "interrupted")


def _build_child_setup(niceness: int) -> None:
    """In the build process, before it runs: lower its priority, and have it stopped (SIGTERM, which it survives
    as a resumable build) when `kb serve` dies in any way, so no build outlives the service that started it."""
    os.nice(niceness)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _start_build(settings: Any) -> Any:
    """`kb ingest` in its own process, at low priority (the service's answers come first), its output in
    KB_DATA_DIR/build.log; a thread reaps it when it ends."""
    import subprocess
    import threading

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.data_dir / "build.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "ingest"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _build_child_setup(settings.build_niceness),  # noqa: PLW1509 - no thread of ours yet
        )
    threading.Thread(target=process.wait, name="kb-build-reaper", daemon=True).start()
    from kb.build_progress import announce_build

    announce_build(settings.build_progress_file, process.pid)  # before the build has even started Python
    print(
        f"building the knowledge base in the background (pid {process.pid}, log {log_path}): answers come within a "
        "minute and improve as the build goes on; /healthz shows its progress",
        file=sys.stderr,
    )
    return process


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Documents, versions, and passages per document and language; and the build's progress while one runs."""
    from kb.build_progress import read_build_progress
    from kb.errors import KBError, NotBuiltError

    kb = _kb()
    progress = read_build_progress(kb.settings.build_progress_file)
    build = progress.summary() if progress is not None and progress.state != "done" else None
    try:
        data = kb.stats()
    except NotBuiltError as exc:
        if build is None:
            _err(str(exc))
        data = {"documents": {}, "passages": 0}
    except KBError as exc:
        _err(str(exc))
    if build is not None:
        data["build"] = build
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
    if build is not None:
        left = f", about {max(1, round(build['seconds_left'] / 60))} min left" if build.get("seconds_left") is not None else ""
        now = f", now {build['current_text']}" if build.get("current_text") else ""
        Console(stderr=True).print(
            f"build {build['state']}: {build['percent']} % ({build['embedded']:,} of {build['passages']:,} passages "
            f"embedded, {build['texts_done']} of {build['texts']} texts){now}{left}",
            highlight=False,
            markup=False,
        )


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


AnswerOpt = Annotated[
    Optional[list[str]], typer.Option("--answer", help="An answer as key=value (repeatable), e.g. contract_value=above_threshold.")
]


def _answers(items: list[str] | None) -> dict[str, str]:
    """`--answer key=value` options as the roadmap's answers."""
    answers: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            _err(f"--answer must be key=value, not {item!r}")
        answers[key.strip()] = value.strip()
    return answers


@app.command()
def roadmap(
    scenario: Annotated[str, typer.Option("--scenario", help="behov, prototype, demo or loesning.")],
    answer: AnswerOpt = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the texts: da or en.")] = "da",
    as_json: JsonOpt = False,
) -> None:
    """The procurement roadmap from need to operation for a scenario: next questions, phases, steps and cited provisions."""
    from kb.errors import KBError
    from kb.roadmap import build_roadmap

    answers = _answers(answer)
    if lang not in LANGUAGES:
        _err(f"--lang must be {' or '.join(LANGUAGES)}, not {lang!r}")
    kb = _kb()
    try:
        data = build_roadmap(scenario, answers, lang, kb=kb if kb.is_built() else None)
    except KBError as exc:
        _err(str(exc))
    if as_json:
        _print_json(data)
        return
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{data['scenario_label']}[/]", highlight=False)
    for phase in data["phases"]:
        console.print(f"\n[bold underline]{phase['title']}[/]", highlight=False)
        for step in phase["steps"]:
            mark = " [yellow](open: " + ", ".join(step["depends_on"]) + ")[/]" if step["open"] else ""
            console.print(f"• [bold]{step['title']}[/] [dim]({step['who']})[/]{mark}", highlight=False)
            console.print(f"  {step['what']}", highlight=False, markup=False)
            cited = [c["ref"] for c in step["refs"] + step["clauses"]]
            console.print("  " + ", ".join(cited), style="cyan", highlight=False, markup=False)
    if data["questions"]:
        console.print("\n[bold]Next questions[/]" if lang == "en" else "\n[bold]Næste spørgsmål[/]", highlight=False)
        for question in data["questions"]:
            values = "|".join(option["value"] for option in question["options"])
            console.print(f"  --answer {question['key']}={values}: {question['text']}", highlight=False, markup=False)


@app.command()
def contract(
    scenario: Annotated[str, typer.Option("--scenario", help="behov, prototype, demo or loesning.")],
    answer: AnswerOpt = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the draft: da or en.")] = "da",
    fmt: Annotated[str, typer.Option("--format", help="json, md or docx.")] = "md",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """The contract draft for a scenario: sections with their model clauses quoted, the provisions behind them and what to fill in."""
    from kb.contract import build_contract, contract_docx, contract_markdown
    from kb.errors import KBError

    answers = _answers(answer)
    if lang not in LANGUAGES:
        _err(f"--lang must be {' or '.join(LANGUAGES)}, not {lang!r}")
    if fmt not in ("json", "md", "docx"):
        _err(f"--format must be json, md or docx, not {fmt!r}")
    kb = _kb()
    try:
        draft = build_contract(scenario, answers, lang, kb=kb if kb.is_built() else None)
    except KBError as exc:
        _err(str(exc))
    if fmt == "docx":
        data = contract_docx(draft)
    else:
        text = json.dumps(draft, ensure_ascii=False, indent=2) + "\n" if fmt == "json" else contract_markdown(draft)
        data = text.encode("utf-8")
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)
        sys.stderr.write(f"wrote {out} ({len(draft['sections'])} sections)\n")


def main() -> None:
    """Run the CLI; an unexpected error is one red line (KB_DEBUG=1 shows the traceback)."""
    from kb.errors import InvalidSettingError

    try:
        app()
    except InvalidSettingError as exc:  # read by whichever command: the variable and its rule, as one line
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
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
