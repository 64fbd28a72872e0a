"""The widget's reading view (issue 19) in Debian's Chromium against the real service: room for the answer, its
parts as headed sections with quotes and their versions, the next steps and the memo, Danish act titles."""

from __future__ import annotations

import io

import httpx
import pytest

from tests.browser.test_widget import QUESTION_DA, WAIT, ask, open_widget

pytestmark = [pytest.mark.slow, pytest.mark.browser]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
DANISH_TITLES = {  # ingest/manifest.yaml `title_da`
    "ai-act": "Forordningen om kunstig intelligens",
    "gdpr": "Databeskyttelsesforordningen",
    "nis2": "NIS2 – direktiv (EU) 2022/2555",
}


def visible_share(page) -> float:  # type: ignore[no-untyped-def]
    """The share of the panel's height that shows the last answer (its box clipped to the conversation's)."""
    answer = page.locator(".kbw-turn").last.locator(".kbw-answer").bounding_box()
    conversation = page.locator(".kbw-conversation").bounding_box()
    panel = page.locator(".kbw-panel").bounding_box()
    top = max(answer["y"], conversation["y"])
    bottom = min(answer["y"] + answer["height"], conversation["y"] + conversation["height"])
    return max(0.0, bottom - top) / panel["height"]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_an_answer_gets_the_room_and_shows_its_parts(browser, live_server: str, screenshot, viewport: str) -> None:  # type: ignore[no-untyped-def]
    phone = viewport == "phone"
    context = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=phone, has_touch=phone)
    page = context.new_page()
    try:
        page.goto(live_server + "/")
        open_widget(page)
        assert page.locator(".kbw-scenarios").is_visible()  # before the first question: the whole picker
        answer = ask(page, QUESTION_DA, scenario="loesning")

        # the picker folded into one line, the form into one line
        assert page.locator(".kbw-scenarios").is_hidden()
        fold = page.locator(".kbw-scenario-fold")
        assert fold.inner_text() == "Scenarie: LØSNING · skift"
        assert page.locator(".kbw-question").bounding_box()["height"] < 60
        share = visible_share(page)
        assert share >= 0.6, f"the answer shows on {share:.0%} of the panel"

        # the answer's first line is in view (not scrolled to the sources)
        conversation = page.locator(".kbw-conversation").bounding_box()
        first = answer.locator(".kbw-part").first.bounding_box()
        assert conversation["y"] - 1 <= first["y"] < conversation["y"] + conversation["height"] - 20

        # the parts: the direct answer, the scenario, the sources; quotes with reference and version beside them
        kinds = [k.get_attribute("data-kind") for k in answer.locator(".kbw-part").all()]
        assert kinds[0] == "direct" and kinds[-1] == "sources", kinds
        assert answer.locator('.kbw-part[data-kind="direct"] .kbw-part-heading').inner_text() == "Svar"
        quote = answer.locator('.kbw-part[data-kind="direct"] .kbw-quote').first
        assert len(quote.locator(".kbw-quote-text").inner_text()) > 40
        source = quote.locator(".kbw-quote-source .kbw-source").first
        assert source.locator(".kbw-chip").inner_text() == "[1]"
        assert source.locator(".kbw-source-ref").inner_text() == source.locator(".kbw-chip").get_attribute("data-ref")
        assert "2024" in source.locator(".kbw-source-version").inner_text()  # "OJ L, 12.7.2024"
        assert answer.locator('.kbw-part[data-kind="sources"] .kbw-sources li').count() >= 1
        # next steps for the answer's scenario
        assert answer.locator(".kbw-next-roadmap").get_attribute("href") == f"{live_server}/roadmap?scenario=loesning"
        assert answer.locator(".kbw-next-contract").get_attribute("href") == f"{live_server}/contract?scenario=loesning"
        screenshot(f"{viewport}-answer", target=page)

        # the folded line opens the picker again, on the scenario chosen
        fold.click()
        assert page.locator(".kbw-scenarios").is_visible()
        assert page.locator("#kbw-scenario-loesning").is_checked()
        assert page.evaluate("document.getElementById('kb-chat-widget').shadowRoot.activeElement.id") == "kbw-scenario-loesning"
        page.locator("#kbw-scenario-behov").check()
        page.locator(".kbw-question").fill("Hvornår skal en ordregiver bruge et innovationspartnerskab?")
        page.locator(".kbw-send").click()
        page.locator('.kbw-turn:nth-child(2) .kbw-answer[data-state="done"]').wait_for(timeout=WAIT)
        assert page.locator(".kbw-scenarios").is_hidden()
        assert page.locator(".kbw-scenario-fold").inner_text() == "Scenarie: BEHOV · skift"
        second = page.locator(".kbw-turn").nth(1).bounding_box()
        conversation = page.locator(".kbw-conversation").bounding_box()
        assert conversation["y"] - 1 <= second["y"] < conversation["y"] + 40  # the new turn's top, not the old answer

        if phone:
            panel = page.locator(".kbw-panel").bounding_box()
            assert panel["width"] == 390 and page.locator(".kbw-wide").is_hidden()  # the phone's full screen
        else:
            narrow = page.locator(".kbw-panel").bounding_box()["width"]
            page.locator(".kbw-wide").click()
            assert page.locator(".kbw-wide").get_attribute("aria-pressed") == "true"
            wide = page.locator(".kbw-panel").bounding_box()
            assert wide["width"] >= 760 > narrow and wide["x"] >= 0
            screenshot(f"{viewport}-wide", target=page)
    finally:
        context.close()


def test_the_view_stays_where_the_reader_scrolled(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    """Once the reader scrolls, the arriving answer does not move the view (without the check it scrolls to it)."""
    page.goto(live_server + "/")
    open_widget(page)
    ask(page, QUESTION_DA, scenario="loesning")
    held: list = []  # the second answer is held back until the reader has scrolled (answers here come fast)
    page.route("**/api/ask", lambda route: held.append(route))
    page.locator(".kbw-question").fill("Hvad skal en idriftsætter gøre med logfiler?")
    page.locator(".kbw-send").click()
    page.locator('.kbw-turn:nth-child(2) .kbw-answer[data-state="streaming"]').wait_for(timeout=WAIT)
    while not held:
        page.wait_for_timeout(50)
    page.locator(".kbw-conversation").hover()
    page.mouse.wheel(0, -5000)  # the reader goes back up to the first answer while the second is on its way
    page.wait_for_function(
        "() => document.getElementById('kb-chat-widget').shadowRoot.querySelector('.kbw-conversation').scrollTop === 0"
    )
    held[0].fulfill(response=held[0].fetch(timeout=WAIT))
    page.locator('.kbw-turn:nth-child(2) .kbw-answer[data-state="done"]').wait_for(timeout=WAIT)
    assert page.locator(".kbw-turn:nth-child(2) .kbw-chip").count() >= 1  # it did arrive
    scroll_top = "() => document.getElementById('kb-chat-widget').shadowRoot.querySelector('.kbw-conversation').scrollTop"
    assert page.evaluate(scroll_top) == 0


def test_memo_downloads_as_docx_with_question_quotes_and_references(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    from docx import Document

    page.goto(live_server + "/")
    open_widget(page)
    answer = ask(page, QUESTION_DA, scenario="loesning")
    quotes = [q.inner_text() for q in answer.locator('.kbw-part[data-kind="direct"] .kbw-quote-text').all()]
    sources = [
        (li.locator(".kbw-chip").inner_text(), li.locator(".kbw-chip").get_attribute("data-ref"), li.locator(".kbw-source-version").inner_text())
        for li in answer.locator('.kbw-part[data-kind="sources"] .kbw-sources li').all()
    ]
    assert sources
    with page.expect_download(timeout=WAIT) as download_info:
        answer.locator(".kbw-memo").click()
    download = download_info.value
    assert download.suggested_filename == "notat.docx"
    memo = Document(io.BytesIO(open(download.path(), "rb").read()))
    paragraphs = [p.text for p in memo.paragraphs]
    text = "\n".join(paragraphs)
    assert f"Spørgsmål: {QUESTION_DA}" in paragraphs
    assert "Scenarie: LØSNING" in paragraphs
    quoted = [p.text for p in memo.paragraphs if p.style.name == "Quote"]
    assert quoted and quoted[0] == quotes[0].strip()
    assert "Henvisninger" in paragraphs
    references = [p for p in paragraphs if p.startswith("[")]
    for n, ref, version in sources:  # every source the widget lists is a numbered reference, with its version
        line = next(p for p in references if p.startswith(f"{n} {ref} – "))
        assert version in line, (line, version)
    screenshot(target=page)


def test_api_answer_carries_its_sections(live_server: str) -> None:
    body = {"question": QUESTION_DA, "scenario": "loesning"}
    answer = httpx.post(f"{live_server}/api/ask", json=body, timeout=WAIT / 1000).json()
    kinds = [s["kind"] for s in answer["sections"]]
    assert kinds[0] == "direct" and kinds[-1] == "sources"
    assert all(s["text"] in answer["answer"] for s in answer["sections"])  # the parts are the answer's text
    numbers = {c["n"] for c in answer["citations"]}
    assert set(answer["sections"][-1]["citations"]) <= numbers
    with httpx.stream("POST", f"{live_server}/api/ask", json=body, headers={"Accept": "text/event-stream"}, timeout=WAIT / 1000) as response:
        events = response.read().decode()
    done = events.split("event: done\ndata: ")[1]
    assert '"sections": [{"kind": "direct"' in done


def test_passages_carry_the_danish_title_of_a_danish_text(small_kb, live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    danish: dict[str, str] = {}
    for passage in small_kb.store.iter_passages():
        if passage.doc_id in DANISH_TITLES and passage.language == "da":
            danish.setdefault(passage.doc_id, passage.passage_id)
    assert set(danish) == set(DANISH_TITLES)
    for doc_id, passage_id in danish.items():
        view = httpx.get(f"{live_server}/api/passages/{passage_id}", timeout=30).json()
        assert view["passage"]["title"].startswith(DANISH_TITLES[doc_id]), view["passage"]["title"]
        english = [p for p in view["parallel"] if p["language"] == "en"]
        assert english and not english[0]["title"].startswith(DANISH_TITLES[doc_id])  # the English text keeps its own
    # and in the widget's passage view, in Danish
    page.goto(live_server + "/")
    open_widget(page)
    answer = ask(page, QUESTION_DA, scenario="loesning")
    answer.locator('.kbw-chip[data-doc-id="ai-act"]').first.click()
    page.locator('.kbw-passage .kbpv[lang="da"]').wait_for()
    assert page.locator(".kbw-passage .kbpv-title").inner_text().startswith(DANISH_TITLES["ai-act"])


# --- accessibility: the axe-core audit and reflow are in test_accessibility.py -----------------------------------


def _press_until(page, key: str, active: str, target: str, limit: int) -> None:  # type: ignore[no-untyped-def]
    """Press `key` until the widget's focused element is `target` (its id or class), at most `limit` times."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate(active) == target:
            break
    assert page.evaluate(active) == target


def test_keyboard_only_ask_open_citation_back_change_scenario(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    active = "() => { const a = document.getElementById('kb-chat-widget').shadowRoot.activeElement; return a && (a.id || a.className); }"
    page.goto(live_server + "/")
    page.locator(".kbw-launcher").focus()
    page.keyboard.press("Enter")
    page.locator(".kbw-scenario").nth(4).wait_for()
    assert page.evaluate(active) == "kbw-question"
    page.keyboard.type(QUESTION_DA)
    page.keyboard.press("Enter")
    page.locator('.kbw-turn:last-child .kbw-answer[data-state="done"]').wait_for(timeout=WAIT)
    assert page.evaluate(active) == "kbw-question"  # focus back in the question box
    # Shift+Tab back from the question box to the answer's last control, then to a citation chip
    _press_until(page, "Shift+Tab", active, "kbw-chip", 60)
    page.keyboard.press("Enter")
    page.locator(".kbw-passage .kbpv-text").wait_for()
    assert page.evaluate(active) == "kbw-back"
    page.keyboard.press("Enter")  # back to the conversation, on the chip that opened it
    assert page.locator(".kbw-side").is_hidden() and page.evaluate(active) == "kbw-chip"
    _press_until(page, "Tab", active, "kbw-scenario-fold", 80)
    page.keyboard.press("Enter")
    assert page.evaluate(active) == "kbw-scenario-auto"  # the picker opens on the choice in force ("find it for me")
    page.keyboard.press("ArrowDown")  # radios: the arrow keys choose
    assert page.locator("#kbw-scenario-behov").is_checked()
    assert page.locator(".kbw-scenario-fold").inner_text() == "Scenarie: BEHOV · skift"
    # the new scenario is the one the next question is asked in, still by keyboard alone
    _press_until(page, "Tab", active, "kbw-question", 20)
    page.keyboard.type("Hvornår skal en ordregiver bruge et innovationspartnerskab?")
    page.keyboard.press("Enter")
    page.locator('.kbw-turn:nth-child(2) .kbw-answer[data-state="done"]').wait_for(timeout=WAIT)
    assert "BEHOV (valgt af dig)" in page.locator(".kbw-turn").nth(1).locator(".kbw-scenario-line").inner_text()


# tests/test_versions.py: Article 113 was changed by the Digital Omnibus (2026/1744), whose wording is English only
ANNEX_III_DA = "Hvornår gælder forpligtelserne for højrisiko-AI-systemer i bilag III?"


def test_the_answer_shows_its_notes_in_the_interface_language(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    """The answer's notes (the wording in force is English only; the answer is provisional while the index is built)
    are a labelled part of the answer; the widget's own words follow the interface, the server's carry their `lang`."""
    page.goto(live_server + "/")
    open_widget(page)
    answer = ask(page, ANNEX_III_DA)
    notes = answer.locator(".kbw-notes")
    assert notes.get_attribute("aria-labelledby") == answer.locator(".kbw-notes-heading").get_attribute("id")
    assert answer.locator(".kbw-notes-heading").inner_text() == "Bemærk"
    version_note = notes.locator(".kbw-note", has_text="ai-act:art-113")
    assert version_note.inner_text().startswith("Den danske tekst i vidensbasen er den oprindelige fra 2024")
    assert version_note.get_attribute("lang") is None  # Danish, as the interface
    assert "foreløbigt" not in notes.inner_text()  # the knowledge base is built
    assert answer.locator('.kbw-quote-text[lang="en"]').count() >= 1  # the English wording in force, quoted
    screenshot("da", target=page)

    # while the index is being built the service marks answers `partial`: here the real answer, marked so
    def while_building(route) -> None:  # type: ignore[no-untyped-def]
        response = route.fetch()
        events = response.text()
        assert '"partial": false' in events
        route.fulfill(response=response, body=events.replace('"partial": false', '"partial": true'))

    page.route("**/api/ask", while_building)
    page.locator('.kbw-lang-button[data-lang="en"]').click()
    page.locator(".kbw-question").fill(ANNEX_III_DA)
    page.locator(".kbw-send").click()
    page.locator('.kbw-turn:nth-child(2) .kbw-answer[data-state="done"]').wait_for(timeout=WAIT)
    notes = page.locator(".kbw-turn").nth(1).locator(".kbw-notes")
    assert notes.locator(".kbw-notes-heading").inner_text() == "Note"
    items = notes.locator(".kbw-note")
    assert items.first.inner_text().startswith("A provisional answer: the knowledge base is still being built")
    assert items.first.get_attribute("lang") is None
    assert notes.locator(".kbw-note", has_text="ai-act:art-113").get_attribute("lang") == "da"  # the answer's language
    assert page.locator(".kbw-turn").nth(1).locator(".kbw-answer-text").get_attribute("lang") == "da"
    screenshot("en-partial", target=page)


def test_the_see_also_line_is_in_the_answers_language(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    """An English answer in the Danish interface is marked lang="en" as a whole, so the see-also line inside its
    sources part is English too, like the part's heading the server gives."""
    page.goto(live_server + "/")
    open_widget(page)
    answer = ask(page, "What is the difference between a provider and a deployer under the AI Act?")
    assert answer.locator(".kbw-answer-text").get_attribute("lang") == "en"
    sources = answer.locator('.kbw-part[data-kind="sources"]')
    assert sources.locator(".kbw-part-heading").inner_text() == "Sources"
    assert sources.locator(".kbw-part-subheading").inner_text() == "See also"
