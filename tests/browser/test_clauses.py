"""The clause finder in Debian's Chromium against the real service on loopback."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WAIT = 60_000


def search(page, query: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("#q").fill(query)
    page.locator("#search-form button[type=submit]").click()
    page.locator("#results[aria-busy=false]").wait_for(timeout=WAIT)


def test_search_highlights_the_matching_words(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/clauses")
    page.locator("#filter-doc option").nth(2).wait_for(state="attached")  # documents loaded
    search(page, "databehandler")
    results = page.locator(".result")
    assert results.count() >= 3
    marks = [m.lower() for m in page.locator(".result mark").all_inner_texts()]
    assert marks and all(m.startswith("databehandl") for m in marks)
    first = results.first
    assert re.match(r"^[a-z0-9-]+:", first.locator(".result-ref").inner_text())
    assert first.locator(".result-heading-text").inner_text()
    assert "q=databehandler" in page.url
    screenshot()


def test_filter_by_kind_and_scenario(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/clauses?q=databehandler")
    page.locator("#results[aria-busy=false]").wait_for(timeout=WAIT)
    page.locator("#filter-scenario option").nth(4).wait_for(state="attached")
    page.locator("#filter-kind").select_option("contract")
    page.wait_for_url(re.compile(r"kind=contract"))
    page.locator("#results[aria-busy=false]").wait_for(timeout=WAIT)
    metas = page.locator(".result .result-meta").all_inner_texts()
    assert metas and all("kontrakt" in m for m in metas)
    assert all(ref.startswith("erst-it-rammeaftale:") for ref in page.locator(".result-ref").all_inner_texts())
    screenshot("contract")
    page.locator("#filter-kind").select_option("law")
    page.locator("#filter-scenario").select_option("loesning")
    page.wait_for_url(re.compile(r"scenario=loesning"))
    page.locator("#results[aria-busy=false]").wait_for(timeout=WAIT)
    refs = page.locator(".result-ref").all_inner_texts()
    assert refs and all(r.startswith("gdpr:art-28") for r in refs)  # LØSNING's profile
    screenshot("law-loesning")


def test_deep_link_to_a_clause(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/clauses/ai-act:art-26")
    heading = page.locator("h1.clause-heading")
    heading.wait_for(timeout=WAIT)
    assert heading.inner_text().startswith("ai-act:art-26 Artikel 26")
    assert page.locator('.clause-version[data-lang="da"] .clause-passage').count() >= 10
    english = page.locator('.clause-version[data-lang="en"]')
    assert english.get_attribute("lang") == "en"
    assert "Deployers of high-risk AI systems" in english.inner_text()
    assert page.locator('#clause-cites li[data-ref="ai-act:annex-iii"]').count() == 1
    assert page.locator("#clause-similar li").count() >= 1
    assert page.locator("a.clause-source").first.get_attribute("href").startswith("https://eur-lex.europa.eu/")
    screenshot("art-26")
    # a cited provision's link leads to its own stable address
    page.locator('#clause-cites li[data-ref="ai-act:annex-iii"] a').click()
    page.wait_for_url(re.compile(r"/clauses/ai-act:annex-iii$"))
    page.locator("h1.clause-heading").wait_for(timeout=WAIT)
    assert page.locator("h1.clause-heading").inner_text().startswith("ai-act:annex-iii")


def test_cited_by_and_the_law_behind_a_contract(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/clauses/gdpr:art-9")
    page.locator("#clause-cited-by").wait_for(timeout=WAIT)
    assert page.locator('#clause-cited-by li[data-ref="ai-act:art-3.37"]').count() == 1
    page.goto(live_server + "/clauses/erst-it-rammeaftale:section-16")
    page.locator("#clause-similar").wait_for(timeout=WAIT)
    assert "bag" in page.locator("#clause-similar h2").inner_text()  # "the provisions of law behind it"
    similar = page.locator("#clause-similar li").evaluate_all("items => items.map(i => i.dataset.ref)")
    assert any(ref.startswith("gdpr:art-28") for ref in similar)
    screenshot()


def test_english_interface_and_section_sign_reference(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/clauses/udbudsloven:§-5")
    page.locator("h1.clause-heading").wait_for(timeout=WAIT)
    assert page.locator("h1.clause-heading").inner_text().startswith("udbudsloven:§-5")
    page.locator('.lang-switch button[data-lang="en"]').click()
    page.locator("#clause-cites h2").wait_for(timeout=WAIT)
    assert page.locator("#clause-cites h2").inner_text() == "Refers to"
    assert page.locator("html").get_attribute("lang") == "en"
    screenshot()


def test_unknown_clause_and_markup_in_the_query(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/clauses/ai-act:art-999")
    alert = page.locator("#clause [role=alert]")
    alert.wait_for(timeout=WAIT)
    assert "ai-act:art-999" in alert.inner_text()
    payload = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    page.goto(live_server + "/clauses")
    search(page, payload)
    assert payload in page.locator("#search-status").inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None
    screenshot()


def test_words_typed_before_the_filter_lists_came_are_kept(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    """A reader quicker than the page's lists of documents and scenarios: their words stay in the box when the
    lists come, and their search runs. The page used to route only once the lists came, which emptied the box
    (seen in CI as a search that never started)."""
    held: list[object] = []
    page.route("**/api/documents", lambda route: held.append(route))  # answered only when the test lets it
    page.goto(live_server + "/clauses")
    page.locator("#q").fill("databehandler")
    while not held:
        page.wait_for_timeout(50)
    held[0].continue_()  # type: ignore[attr-defined]
    page.locator("#filter-doc option").nth(2).wait_for(state="attached")
    assert page.locator("#q").input_value() == "databehandler"
    page.locator("#search-form button[type=submit]").click()
    page.locator("#results[aria-busy=false]").wait_for(timeout=WAIT)
    assert page.locator(".result").count() >= 3 and "q=databehandler" in page.url
    screenshot()


def test_an_amended_article_shows_old_and_new_wording_side_by_side(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    """Art. 113 as amended by Regulation (EU) 2026/1744: the Danish reader is told the Danish text is the 2024
    original, sees the 2024 and the consolidated wording side by side with point (c)'s new dates marked, and can
    follow the link to the amending article."""
    page.goto(live_server + "/clauses/ai-act:art-113")
    change = page.locator("#clause-change")
    change.wait_for(timeout=WAIT)
    assert "2026/1744" in change.locator("h2").first.inner_text()
    assert "in force from 27.7.2026" in change.locator(".clause-version-note").first.inner_text()
    assert "oprindelige fra 2024" in change.locator(".clause-superseded").inner_text()
    old = change.locator(".clause-change-old")
    new = change.locator(".clause-change-new")
    assert "OJ L, 12.7.2024" in old.locator("h3").inner_text() and "consolidated 2026-07-27" in new.locator("h3").inner_text()
    assert "2 August 2026" in old.inner_text() and "2 December 2027" in new.inner_text()
    added = " ".join(new.locator("ins.changed").all_inner_texts())
    removed = " ".join(old.locator("del.changed").all_inner_texts())
    assert "December" in added and "Annex III" in added  # point (c), marked
    assert "2 August 2027" in removed
    box_old, box_new = old.bounding_box(), new.bounding_box()
    assert box_old and box_new and box_old["x"] < box_new["x"] and abs(box_old["y"] - box_new["y"]) < 5  # side by side
    link = change.locator('#clause-amending li[data-ref="digital-omnibus-ai:art-1.40"] a')
    assert link.count() == 1
    screenshot("art-113")
    link.click()
    page.wait_for_url(re.compile(r"/clauses/digital-omnibus-ai:art-1\.40$"))
    page.locator("h1.clause-heading").wait_for(timeout=WAIT)
    assert "Article 113" in page.locator(".clause-version").first.inner_text()
    screenshot("amending-article")
