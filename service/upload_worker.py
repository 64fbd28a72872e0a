"""One thread per service process embeds accepted uploads, one after another, in the order they came.

An upload waits for the knowledge base's write lock, and a corpus ingest can hold that lock for many minutes.
FastAPI's background tasks waited in the shared worker threads, one thread per upload. Forty uploads queued behind
an ingest took every thread, and every request that needs one (search, status, the next upload) hung until the
ingest ended. With a queue and one thread of its own, a waiting upload holds no request thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("service")

Job = Callable[[], None]


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
            job = self._jobs.get()
            try:
                job()
            except Exception:  # one failed job must not stop the uploads after it; its record says what happened
                log.exception("an upload job failed")
