"""Rich progress bar and summary table for `kb ingest` (kept apart so the core never imports rich)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:  # the composition root's helper: only the CLI imports it
    from ingest.pipeline import IngestReport, TextReport

_console = Console(stderr=True)


class IngestProgressBar:
    """Two bars: texts done, and passages embedded with their rate and the time left."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=_console,
            transient=False,
        )
        self.texts_task = self.progress.add_task("texts", total=None, rate="")
        self.embed_task = self.progress.add_task("embedding", total=0, rate="")
        self._tokens = 0
        self._started = time.perf_counter()

    def __enter__(self) -> IngestProgressBar:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def texts(self, total: int) -> None:
        self.progress.update(self.texts_task, total=total)

    def text_started(self, key: str, to_embed: int) -> None:
        task = self.progress.tasks[self.embed_task]
        self.progress.update(self.embed_task, total=(task.total or 0) + to_embed, description=f"embedding {key}")

    def embedded(self, count: int, tokens: int) -> None:
        self._tokens += tokens
        elapsed = max(time.perf_counter() - self._started, 1e-6)
        self.progress.update(self.embed_task, advance=count, rate=f"{self._tokens / elapsed:,.0f} tok/s")

    def text_done(self, report: TextReport) -> None:
        self.progress.update(self.texts_task, advance=1, description=f"texts ({report.key})")
        if report.error:
            _console.print(f"[red]failed[/] {report.key}: {report.error}", highlight=False)


def print_ingest_summary(report: IngestReport) -> None:
    """Per text: passages, embedded, reused, removed, and the failures with their reasons."""
    table = Table(title=f"ingest finished in {report.seconds:.1f} s")
    for col in ("text", "passages", "embedded", "reused", "removed", "status"):
        table.add_column(col, justify="right" if col not in ("text", "status") else "left")
    for t in report.texts:
        status = "[red]failed[/]" if t.error else ("unchanged" if t.unchanged else "updated")
        table.add_row(t.key, str(t.passages), str(t.embedded), str(t.reused), str(t.removed), status)
    table.add_row(
        "[bold]total",
        str(sum(t.passages for t in report.texts)),
        str(sum(t.embedded for t in report.texts)),
        str(sum(t.reused for t in report.texts)),
        str(sum(t.removed for t in report.texts)),
        f"{len(report.failed)} failed" + (f", {report.pruned} pruned" if report.pruned else ""),
    )
    _console.print(table)
    for t in report.failed:
        _console.print(f"[red]failed[/] {t.key}: {t.error}", highlight=False)
