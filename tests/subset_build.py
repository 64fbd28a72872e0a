"""The test subset's knowledge base, built by a real ingest in a child process.

The build takes about 3 minutes of embedding on 2 cores, and about 300 of the suite's tests need no knowledge base
at all. `tests/conftest.py` starts this build when the session starts and runs those tests first, so the two
overlap; the first test that needs the knowledge base waits for the build (`BackgroundBuild.wait`).

    python -m tests.subset_build DATA_DIR CORPUS_DIR MANIFEST
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REPORT_FILE = "first-report.pickle"  # the first ingest's report, for the tests that look at it; written last


def build(data_dir: Path, corpus_dir: Path, manifest: Path) -> tuple[Any, Any]:
    """Ingest the subset into `data_dir` and calibrate its abstention model; the knowledge base and the report."""
    from eval.calibrate import calibrate
    from ingest.pipeline import ingest
    from kb.knowledge_base import KnowledgeBase
    from kb.settings import Settings

    settings = Settings(data_dir=data_dir, corpus_dir=corpus_dir, manifest=manifest)
    kb = KnowledgeBase(settings)
    report = ingest(kb, corpus_dir, manifest)
    if report.failed:
        raise SystemExit(f"the test subset's ingest failed: {[(t.key, t.error) for t in report.failed]}")
    # the abstention model is calibrated for the knowledge base it serves: here, the subset
    calibrate(kb, REPO / "eval" / "datasets" / "calibration.jsonl", only_held=True).save(data_dir / "abstention.json")
    (data_dir / REPORT_FILE).write_bytes(pickle.dumps(report))
    return kb, report


class BackgroundBuild:
    """`build` in a child process, its output in a log beside the data dir."""

    def __init__(self, data_dir: Path, corpus_dir: Path, manifest: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.log = data_dir.with_name(data_dir.name + "-build.log")
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.subset_build", str(data_dir), str(corpus_dir), str(manifest)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def wait(self) -> Path:
        """The built data dir, once the child has finished; an error with the end of its log if it failed."""
        code = self.process.wait()
        if code != 0 or not (self.data_dir / REPORT_FILE).exists():
            tail = self.log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"building the test subset failed (exit {code}); the end of {self.log}:\n{tail}")
        return self.data_dir

    def stop(self) -> None:
        """End the child if the session ends before it did (an interrupted or failed-early run)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target, corpus, manifest_file = (Path(arg) for arg in sys.argv[1:4])
    build(target, corpus, manifest_file)
