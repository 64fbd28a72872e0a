"""Real Chromium (Debian's package) driven by Playwright, against the real service on loopback.

Every browser test saves a screenshot under `tests/browser/screenshots/` (or `KB_SCREENSHOT_DIR`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.servers import free_port
from tests.conftest import kb_env
from tests.servers import serve

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("KB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(os.environ.get("KB_SCREENSHOT_DIR", Path(__file__).resolve().parent / "screenshots"))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session; the tests fail (not skip) when it is missing."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (see .ci/run)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


SERVER_LOGS: list[Path] = []  # the live servers' logs, for the report of a failing test


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A failing browser test's report shows what the page said (console errors, uncaught exceptions, failed
    requests) and the end of the live server's log: a wait that times out says nothing of why on its own."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    page_log = getattr(item, "page_log", None)
    if page_log:
        report.sections.append(("the page said", "\n".join(page_log[-60:])))
    for log in SERVER_LOGS:
        if log.exists():
            report.sections.append((f"the end of {log}", "\n".join(log.read_text(errors="replace").splitlines()[-60:])))


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context (own session storage) and page per test; what the page logs is kept for the report
    of a failing test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    said: list[str] = []
    request.node.page_log = said
    page.on("console", lambda m: said.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: said.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: said.append(f"request failed: {r.method} {r.url} ({r.failure})"))
    page.on("request", lambda r: said.append(f"sent {r.method} {r.url}") if "/api/" in r.url else None)
    page.on("response", lambda r: said.append(f"{r.status} {r.request.method} {r.url}") if "/api/" in r.url else None)
    yield page
    context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, page):  # type: ignore[no-untyped-def]
    """Call `screenshot()` (or `screenshot(name)`) to save the page as PNG, named after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str | None = None, target=None) -> Path:  # type: ignore[no-untyped-def]
        path = SCREENSHOTS / f"{request.node.name}{'-' + name if name else ''}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(scope="session")
def second_origin() -> str:
    """The origin of a page that embeds the widget from elsewhere (`http://localhost:<port>`): its port is chosen
    before the service starts, because CORS matches scheme, host and port exactly."""
    return f"http://localhost:{free_port()}"


@pytest.fixture(scope="session")
def live_server(small_kb, subset_manifest: Path, corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory, second_origin: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`kb serve` over the subset knowledge base; the second origin is allowed by CORS. No rate limit: every browser
    test shares this one server from one address, and together they ask more than the default burst allows (the
    limit itself is tested in tests/test_limits.py)."""
    env = kb_env(
        small_kb.settings.data_dir,
        subset_manifest,
        corpus_dir,
        KB_CORS_ORIGINS=second_origin,
        KB_RATE_LIMIT_PER_MINUTE="0",
    )
    log = tmp_path_factory.mktemp("browser-server") / "server.log"
    SERVER_LOGS.append(log)
    yield from serve(env, log)
