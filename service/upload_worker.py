"""One thread per service process embeds accepted uploads, one after another, in the order they came.

An upload waits for the knowledge base's write lock, and a corpus ingest can hold that lock for many minutes.
FastAPI's background tasks waited in the shared worker threads, one thread per upload. Forty uploads queued behind
an ingest took every thread, and every request that needs one (search, status, the next upload) hung until the
ingest ended. With a queue and one thread of its own, a waiting upload holds no request thread.

The uploads that queued while the worker was busy are embedded together, in order, with one keyword index refresh
for all of them (`UploadService.ingest_all`): on the whole corpus that refresh takes seconds, so uploads queued behind
a writer no longer wait for one refresh each.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ingest.uploads.service import UploadService
from kb.passage import Passage

log = logging.getLogger("service")


@dataclass(frozen=True)
class IngestJob:
    """An accepted upload to embed (its passages, parsed at acceptance, or None to parse them again)."""

    service: UploadService
    doc_id: str
    passages: list[Passage] | None = None


Job = Callable[[], None] | IngestJob


class UploadWorker:
    """A queue of upload jobs and the one thread that runs them; the thread starts with the first job."""

    def __init__(self, name: str = "upload-worker") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, job: Job) -> None:
        """Queue a job. A killed process loses only the queue: the upload records keep their state and the next
        start finishes them (`ingest.uploads.service.UploadService.resume`)."""
        with self._starting:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            while True:  # and whatever queued meanwhile
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            for group in _in_turn(jobs):
                try:
                    if isinstance(group, list):
                        group[0].service.ingest_all([(j.doc_id, j.passages) for j in group])
                    else:
                        group()
                except Exception:  # one failed job must not stop the uploads after it; its record says what happened
                    log.exception("an upload job failed")


def _in_turn(jobs: list[Job]) -> list[Callable[[], None] | list[IngestJob]]:
    """The jobs in their order, each run of consecutive uploads to the same knowledge base as one group."""
    out: list[Callable[[], None] | list[IngestJob]] = []
    for job in jobs:
        if isinstance(job, IngestJob):
            last = out[-1] if out else None
            if isinstance(last, list) and last[0].service.kb is job.service.kb:
                last.append(job)
                continue
            out.append([job])
        else:
            out.append(job)
    return out
