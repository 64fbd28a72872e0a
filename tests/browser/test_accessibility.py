"""WCAG 2.1 A/AA in Debian's Chromium against the real service (issue 19): axe-core (axe-playwright-python, pinned)
over every page and every state of the chat widget, and reflow at 320 CSS px and at 200 % zoom (WCAG 1.4.10).

Danish public bodies must meet WCAG 2.1 AA on their websites, so a hospital can only embed a widget that does.
Every audit shares `axe_violations`; every widget state is reached by `reach`, from a fresh page on the one server.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_widget import DECLINED_DA, QUESTION_DA, WAIT, ask, open_widget

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}

# page → the selector that is there once the page has loaded what it shows
PAGES = {
    "/": ".kbw-launcher",
    "/clauses": "#filter-doc option:nth-child(3)",
    "/clauses/ai-act:art-26": "h1.clause-heading",
    "/roadmap": "#scenario-select option[value=loesning]",
    "/roadmap?scenario=loesning": ".step",
    "/contract": "#scenario-select option[value=loesning]",
    "/contract?scenario=loesning": "#question-options button, .section",
}



def page_id(path: str) -> str:
    """A test id (and screenshot file name) without slashes: `/clauses/ai-act:art-26` → `clauses-ai-act:art-26`."""
    return path.strip("/").replace("/", "-").replace("?", "-") or "home"


WIDGET_STATES = ["closed", "open", "answering", "answered", "picker reopened", "declined", "passage open"]

# Holds the real service's answer stream after its first piece of text that cites a passage, until
# `window.__kbRelease()`: the widget shows what it shows while an answer streams (part of the text, its chips,
# "Finder svar …").
HOLD_STREAM = r"""() => {
  const realFetch = window.fetch;
  window.__kbRelease = null;
  window.fetch = function (url, init) {
    if (!String(url).endsWith("/api/ask")) return realFetch.apply(this, arguments);
    return realFetch.apply(this, arguments).then(async (response) => {
      const text = await response.text();
      const marked = text.search(/event: answer\ndata: [^\n]*\[\d+\]/);  // the first piece that cites a passage
      const end = text.indexOf("\n\n", marked >= 0 ? marked : text.indexOf("event: answer")) + 2;
      const encoder = new TextEncoder();
      const held = new Promise((resolve) => { window.__kbRelease = resolve; });
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode(text.slice(0, end)));
          held.then(() => { controller.enqueue(encoder.encode(text.slice(end))); controller.close(); });
        },
      });
      return new Response(body, { status: response.status, headers: response.headers });
    });
  };
}"""


def axe_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The WCAG 2.1 A/AA violations axe-core finds on the page (the widget's open Shadow DOM included), each as
    `rule: [targets]` so a failure names what to fix."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG).response
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in results["violations"]]


def reach(page, live_server: str, state: str) -> None:  # type: ignore[no-untyped-def]
    """Bring the widget on `/` into `state` (one of WIDGET_STATES)."""
    page.goto(live_server + "/")
    page.locator(".kbw-launcher").wait_for()
    if state == "closed":
        return
    open_widget(page)
    if state == "open":
        return
    if state == "answering":
        page.evaluate(HOLD_STREAM)
        page.locator("#kbw-scenario-loesning").check()
        page.locator(".kbw-question").fill(QUESTION_DA)
        page.locator(".kbw-send").click()
        page.locator('.kbw-turn:last-child .kbw-answer[data-state="streaming"] .kbw-chip').first.wait_for(timeout=WAIT)
        assert page.locator(".kbw-turn:last-child .kbw-thinking").is_visible()
        return
    if state == "declined":
        assert ask(page, DECLINED_DA).get_attribute("data-declined") == "true"
        return
    answer = ask(page, QUESTION_DA, scenario="loesning")
    if state == "picker reopened":
        page.locator(".kbw-scenario-fold").click()
        page.locator(".kbw-scenarios").wait_for()
    elif state == "passage open":
        answer.locator(".kbw-chip").first.click()
        page.locator(".kbw-passage .kbpv-text").wait_for(timeout=WAIT)
    else:
        assert state == "answered", state


@pytest.mark.parametrize("path", list(PAGES), ids=page_id)
def test_axe_finds_no_wcag_violations_on_the_page(page, live_server: str, path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + path)
    page.locator(PAGES[path]).first.wait_for(state="attached", timeout=WAIT)
    page.wait_for_load_state("networkidle")
    assert axe_violations(page) == []


@pytest.mark.parametrize("state", WIDGET_STATES)
def test_axe_finds_no_wcag_violations_in_the_widget_state(page, live_server: str, screenshot, state: str) -> None:  # type: ignore[no-untyped-def]
    reach(page, live_server, state)
    violations = axe_violations(page)
    screenshot(target=page)
    if state == "answering":
        page.evaluate("window.__kbRelease()")  # the answer completes: nothing left streaming when the page closes
        page.locator('.kbw-turn:last-child .kbw-answer[data-state="done"]').wait_for(timeout=WAIT)
    assert violations == []


# --- reflow (WCAG 1.4.10): 320 CSS px wide, and a 1280×900 screen at 200 % zoom (640×450 CSS px, 2 device px each) --
REFLOW = {
    "320px": {"viewport": {"width": 320, "height": 640}},
    "zoom200": {"viewport": {"width": 640, "height": 450}, "device_scale_factor": 2},
}

# every element of the widget that is laid out: how far it reaches beyond the viewport's left and right edges
OUTSIDE = """() => {
  const root = document.getElementById("kb-chat-widget").shadowRoot;
  const width = document.documentElement.clientWidth;
  const out = [];
  root.querySelectorAll("*").forEach((node) => {
    const box = node.getBoundingClientRect();
    if (!node.getClientRects().length || box.width === 0) return;
    if (box.left < -1 || box.right > width + 1) out.push(`${node.className || node.tagName}: ${box.left}–${box.right}`);
  });
  const conversation = root.querySelector(".kbw-conversation");
  return {outside: out.slice(0, 5), page: document.documentElement.scrollWidth - width,
          conversation: conversation.scrollWidth - conversation.clientWidth};
}"""


# when the page scrolls sideways: the elements whose box or content (a long word) reaches beyond its right edge,
# the innermost few (they come last in document order), and the page's scroll width
WIDER_THAN_THE_PAGE = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  const out = [];
  document.querySelectorAll("body *").forEach((node) => {
    const box = node.getBoundingClientRect();
    if (Math.max(box.right, box.left + node.scrollWidth) > width + 1) {
      out.push(`${node.tagName.toLowerCase()}.${node.className}: ${(node.textContent || "").trim().slice(0, 40)}`);
    }
  });
  return out.slice(-4).concat([`scrollWidth ${document.documentElement.scrollWidth}`]);
}"""


def assert_shown(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    """The element can be brought into the viewport by scrolling up or down only, and is then wholly in it sideways."""
    target = page.locator(selector).first
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    viewport = page.viewport_size
    assert target.is_visible() and box is not None, selector
    assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"] + 1, (selector, box)
    assert 0 <= box["y"] < viewport["height"] and box["height"] > 0, (selector, box)


@pytest.mark.parametrize("size", list(REFLOW))
def test_the_widget_reflows_without_loss_of_content(browser, live_server: str, screenshot, size: str) -> None:  # type: ignore[no-untyped-def]
    """No sideways scrolling anywhere, and the answer's text and every control stay reachable by scrolling down."""
    context = browser.new_context(**REFLOW[size])
    page = context.new_page()
    try:
        page.goto(live_server + "/")
        page.locator(".kbw-launcher").wait_for()
        assert page.evaluate(OUTSIDE)["outside"] == []  # the launcher too
        open_widget(page)
        assert_shown(page, ".kbw-question")
        assert_shown(page, "#kbw-scenario-loesning + label")
        answer = ask(page, QUESTION_DA, scenario="loesning")
        overflow = page.evaluate(OUTSIDE)
        assert overflow == {"outside": [], "page": overflow["page"], "conversation": overflow["conversation"]}, overflow
        assert overflow["page"] <= 0 and overflow["conversation"] <= 0, overflow
        screenshot(target=page)
        for part in (".kbw-close", ".kbw-scenario-fold", ".kbw-question", ".kbw-send"):
            assert_shown(page, part)
        for part in (".kbw-part-heading", ".kbw-quote-text", ".kbw-chip", ".kbw-sources li", ".kbw-copy", ".kbw-memo"):
            assert_shown(page, f'.kbw-turn:last-child {part}')
        assert len(answer.inner_text()) > 200
        answer.locator(".kbw-chip").first.click()
        page.locator(".kbw-passage .kbpv-text").wait_for(timeout=WAIT)
        assert page.evaluate(OUTSIDE)["outside"] == []
        assert_shown(page, ".kbw-back")
        assert_shown(page, ".kbw-passage .kbpv-text")
        screenshot("passage", target=page)
    finally:
        context.close()


@pytest.mark.parametrize("size", list(REFLOW))
@pytest.mark.parametrize("path", list(PAGES), ids=page_id)
def test_the_pages_reflow_without_sideways_scrolling(browser, live_server: str, request, path: str, size: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(**REFLOW[size])
    page = context.new_page()
    try:
        page.goto(live_server + path)
        page.locator(PAGES[path]).first.wait_for(state="attached", timeout=WAIT)
        page.wait_for_load_state("networkidle")
        wider = page.evaluate(WIDER_THAN_THE_PAGE)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # the viewport only: a whole long page at 2 device px is slow
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"))
        assert wider == [], f"{path} scrolls sideways: {wider}"
    finally:
        context.close()


def test_the_audit_fails_when_the_question_box_loses_its_label(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    """The audit can fail, and it reaches into the widget's Shadow DOM: without its label the box is a violation."""
    reach(page, live_server, "open")
    shadow = "document.getElementById('kb-chat-widget').shadowRoot"
    page.evaluate(f"{shadow}.querySelector('.kbw-question-label').remove()")
    page.evaluate(f"{shadow}.querySelector('.kbw-question').placeholder = ''")
    assert any(v.startswith("label") for v in axe_violations(page))
