"""The contract draft over HTTP and on the /contract page in real Chromium, on the browser tests' live server.

The API tests sit here rather than in tests/test_contract.py so they reuse the session's `kb serve` instead of
starting another one.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from service.middleware import CSP
from tests.test_limits import _assets

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
LOESNING = {"high_risk": "annex_i", "health_data": "vendor_processor"}


def _headings(data: bytes) -> list[str]:
    from docx import Document

    return [p.text.split(" [")[0] for p in Document(io.BytesIO(data)).paragraphs if p.style.name == "Heading 1"]


def _numbered(draft: dict[str, Any]) -> list[str]:
    return [f"{n}. {s['title']}" for n, s in enumerate(draft["sections"], 1)]


def test_api_contract_json_docx_and_markdown(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=60) as client:
        response = client.post("/api/contract", json={"scenario": "loesning", "answers": LOESNING, "language": "en"})
        assert response.status_code == 200, response.text
        draft = response.json()
        sections = {s["id"]: s for s in draft["sections"]}
        assert "gdpr:art-28" in [p["ref"] for p in sections["data-processing"]["provisions"]]
        oversight = next(c for c in sections["deployer-duties"]["clauses"] if c["ref"] == "mcc-ai-high-risk:section-7")
        passage = client.get(f"/api/passages/{oversight['passages'][0]['passage_id']}").json()["passage"]
        assert passage["text"] == oversight["passages"][0]["text"]
        # the same draft as DOCX and Markdown, from the same parameters as a query
        params = [("scenario", "loesning"), ("lang", "en"), *(("answer", f"{k}={v}") for k, v in LOESNING.items())]
        docx = client.get("/api/contract.docx", params=params)
        assert docx.status_code == 200 and docx.headers["content-type"] == DOCX_TYPE
        assert docx.headers["content-disposition"] == 'attachment; filename="contract-loesning-en.docx"'
        assert _headings(docx.content) == _numbered(draft)
        markdown = client.get("/api/contract.md", params=params)
        assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
        assert markdown.text.startswith("# Contract draft: Solution") and "mcc-ai-high-risk:section-7" in markdown.text
        # the page fits the strict policy: no inline script or style, nothing from another origin
        page = client.get("/contract")
        assert page.headers["content-type"].startswith("text/html") and page.headers["content-security-policy"] == CSP
        assets = _assets(page.text)
        assert assets.inline == [] and all(u.startswith("/static/") for u in assets.urls), assets.urls


@pytest.mark.parametrize(
    ("body", "params", "code", "field", "valid_has"),
    [
        ({"scenario": "solution"}, [("scenario", "solution")], "invalid_scenario", "scenario", "loesning"),
        ({"scenario": "demo", "answers": {"price": "high"}}, [("scenario", "demo"), ("answer", "price=high")],
         "unknown_question", "answers", "health_data"),
        ({"scenario": "demo", "answers": {"high_risk": "maybe"}}, [("scenario", "demo"), ("answer", "high_risk=maybe")],
         "invalid_answer", "answers.high_risk", "annex_iii"),
    ],
)
def test_api_bad_input_is_422_naming_the_field_and_valid_values(
    live_server: str, body: dict, params: list, code: str, field: str, valid_has: str
) -> None:
    responses = [httpx.post(f"{live_server}/api/contract", json=body, timeout=30)]
    responses += [httpx.get(f"{live_server}/api/contract.{ext}", params=params, timeout=30) for ext in ("docx", "md")]
    for response in responses:
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["field"] == field and valid_has in error["valid"]
    malformed = httpx.get(f"{live_server}/api/contract.docx", params={"scenario": "demo", "answer": "high_risk"}, timeout=30)
    assert malformed.status_code == 422 and malformed.json()["error"]["field"] == "answer"


# The "solution" scenario on the page: a class IIa device (high-risk through Annex I), hosted by the vendor.
WALK = [
    ("medical_purpose", "yes"),
    ("device_class", "iia"),
    ("health_data", "vendor_processor"),
    ("contract_value", "above_threshold"),
    ("prior_involvement", "no"),
    ("interacts_with_persons", "unknown"),  # "Don't know": the transparency section stays, marked open
]


def test_walk_the_contract_page_to_the_download(page, live_server: str, screenshot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    # from the roadmap's result, with its answers
    page.goto(f"{live_server}/roadmap?lang=en&scenario=loesning&a=medical_purpose:yes")
    page.wait_for_selector(".step[data-step-id=require-ce-evidence]")
    link = page.locator("#contract-link")
    assert link.inner_text() == "Contract draft for these answers"
    link.click()
    page.wait_for_url("**/contract?**")
    page.wait_for_selector(".section[data-section-id=ce-evidence]")
    assert page.locator("h1").inner_text() == "A contract draft for your scenario"
    assert page.locator("#answer-list dd[data-key=medical_purpose]").inner_text().startswith("Yes")
    screenshot("from-roadmap")

    # the draft grows: unknown high-risk status keeps both clause sets, answers settle them
    duties = page.locator(".section[data-section-id=deployer-duties]")
    assert duties.locator(".clause[data-ref^='mcc-ai-non-high-risk']").count() > 0
    seen = []
    for key, value in WALK[1:]:
        page.wait_for_selector(f"#question[data-key={key}]")
        seen.append(page.locator(".open-mark").count())
        page.click(f"#question-options button[data-value={value}]")
        if key == "device_class":
            page.wait_for_selector("#answer-list dd[data-key=high_risk]")
    page.wait_for_selector("#done:not([hidden])")
    assert seen == sorted(seen, reverse=True) and seen[0] > page.locator(".open-mark").count() > 0, seen
    assert page.locator(".section[data-section-id=data-processing]").count() == 1
    assert duties.locator(".clause[data-ref^='mcc-ai-non-high-risk']").count() == 0
    assert duties.locator(".clause[data-ref='mcc-ai-high-risk:section-7']").count() == 1
    assert "section-open" in (page.locator(".section[data-section-id=transparency]").get_attribute("class") or "")
    assert page.locator(".section-title").all_inner_texts()[0].startswith("Subject matter")

    # a clause is quoted from the knowledge base, its own language marked, fill-in points highlighted
    oversight = duties.locator(".clause[data-ref='mcc-ai-high-risk:section-7']")
    assert "Human oversight" in oversight.inner_text()
    dpa = page.locator(".section[data-section-id=data-processing]")
    assert "no English text" in dpa.locator(".clause").first.inner_text()
    assert "[NAME OF PUBLIC ORGANISATION]" in duties.locator("mark.fill-in").all_inner_texts()
    # a clause and a provision open in place in the shared passage view
    oversight.locator(".ref-button").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('.section[data-section-id=deployer-duties] .passage-view');"
        " return v && (v.dataset.passageId || '').startsWith('mcc-ai-high-risk:section-7'); }"
    )
    duties.locator(".ref-button[data-ref='ai-act:art-26']").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('.section[data-section-id=deployer-duties] .passage-view');"
        " return v && (v.dataset.passageId || '').startsWith('ai-act:art-26'); }"
    )
    assert "deployer" in duties.locator(".passage-panel").inner_text().lower()
    screenshot("draft")

    # the download is the same draft as the page shows
    with page.expect_download() as info:
        page.click("#download-docx")
    path = tmp_path / "draft.docx"
    info.value.save_as(path)
    titles = page.locator(".section-title").evaluate_all("ns => ns.map(n => n.firstChild.textContent)")
    assert _headings(path.read_bytes()) == [f"{n}. {t}" for n, t in enumerate(titles, 1)]
    assert info.value.suggested_filename == "contract-loesning-en.docx"

    # Danish, same answers
    page.click(".lang-switch button[data-lang=da]")
    page.wait_for_function("() => document.querySelector('h1').textContent === 'Kontraktudkast for jeres scenarie'")
    page.wait_for_function(
        "() => (document.querySelector('.section[data-section-id=data-processing] .section-title') || {}).textContent"
        " === 'Databehandleraftale'"
    )
    assert "high_risk" not in page.url and "device_class%3Aiia" in page.url.replace(":", "%3A")
    screenshot("draft-da")
    assert not errors, errors
