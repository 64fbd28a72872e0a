"""The /roadmap page in real Chromium: one scenario walked question by question to the printed roadmap."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The "solution" scenario: a CE-marked class IIa device above the threshold, hosted by the vendor.
WALK = [
    ("medical_purpose", "yes"),
    ("device_class", "iia"),
    ("health_data", "vendor_processor"),
    ("contract_value", "above_threshold"),
    ("prior_involvement", "no"),
    ("interacts_with_persons", "unknown"),  # "Don't know": both branches stay, marked open
]


def test_walk_one_scenario_to_the_printed_roadmap(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # every request the page makes must succeed (its icon included)
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )

    page.goto(f"{live_server}/roadmap?lang=en")
    page.wait_for_selector("#scenario-select option[value=loesning]", state="attached")
    assert page.locator("h1").inner_text() == "From need to operation"
    page.select_option("#scenario-select", "loesning")
    page.wait_for_selector("#question[data-key=medical_purpose]")
    screenshot("first-question")

    seen_steps = []
    for key, value in WALK:
        page.wait_for_selector(f"#question[data-key={key}]")
        seen_steps.append(page.locator(".step").count())
        page.click(f"#question-options button[data-value={value}]")
        if key == "device_class":
            # high_risk follows from class IIa (AI Act Art. 6(1)): it is never asked
            page.wait_for_selector("#answer-list dd[data-key=high_risk]")
    page.wait_for_selector("#done:not([hidden])")
    assert page.locator("#question-form").is_hidden()

    # the roadmap grew as the answers settled it: open branches dropped out
    assert seen_steps[0] > page.locator(".step").count() > 30
    phases = page.locator(".phase-title").all_inner_texts()
    assert phases == ["1. Need and market dialogue", "2. Choice of procedure", "3. Tender and contract",
                      "4. Clinical validation and approvals", "5. Deployment", "6. Operation and follow-up"]
    for step_id in ("eu-procedure", "deployer-duties", "data-processing-agreement", "require-ce-evidence"):
        assert page.locator(f".step[data-step-id={step_id}]").count() == 1, step_id
    assert page.locator(".step[data-step-id=innovation-partnership]").count() == 0
    transparency = page.locator(".step[data-step-id=transparency]")
    assert "step-open" in (transparency.get_attribute("class") or "")
    assert "Open" in transparency.inner_text()
    assert page.locator("#answer-list dd[data-key=high_risk]").inner_text().startswith("Yes, through Annex I")

    # a cited provision opens in place, with its text from the knowledge base
    deployer = page.locator(".step[data-step-id=deployer-duties]")
    deployer.locator(".ref-button[data-ref='ai-act:art-26']").click()
    panel = deployer.locator(".passage-panel")
    panel.wait_for(state="visible")
    page.wait_for_function(
        "() => { const v = document.querySelector('.step[data-step-id=deployer-duties] .passage-view');"
        " return v && (v.dataset.passageId || '').startsWith('ai-act:art-26'); }"
    )
    assert "deployer" in panel.inner_text().lower()
    # a ref outside the test knowledge base is still listed, as text
    assert "mdr:art-20" in page.locator(".step[data-step-id=require-ce-evidence]").inner_text()
    screenshot("roadmap")

    # Danish, same answers
    page.click(".lang-switch button[data-lang=da]")
    page.wait_for_function("() => document.querySelector('.phase-title') && "
                           "document.querySelector('.phase-title').textContent === '1. Behov og markedsdialog'")
    assert "lang=da" in page.url and "contract_value%3Aabove_threshold" in page.url.replace(":", "%3A")
    assert page.locator(".step[data-step-id=deployer-duties] .step-title").inner_text() == "Idriftsætterens pligter"

    # printed: no header, question panel or buttons; the answers and every step with its references remain
    page.emulate_media(media="print")
    assert page.locator(".site-header").is_hidden()
    assert page.locator("#setup").is_hidden() and page.locator("#print-button").is_hidden()
    assert page.locator("#answers").is_visible() and page.locator(".step[data-step-id=deployer-duties]").is_visible()
    assert page.locator(".passage-panel").first.is_hidden()
    screenshot("printed")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert not errors, errors


def test_the_page_restores_from_its_url(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server}/roadmap?lang=en&scenario=behov&a=medical_purpose:no,contract_value:under_500k")
    page.wait_for_selector(".step[data-step-id=small-purchase]")
    assert page.locator(".step[data-step-id=eu-procedure]").count() == 0
    assert page.locator("#question").get_attribute("data-key") == "high_risk"
    # changing an answer reopens its question and both branches
    page.locator("#answer-list dd[data-key=contract_value] button").click()
    page.wait_for_selector(".step[data-step-id=eu-procedure].step-open")


def test_a_scenario_default_can_be_changed(page, live_server: str, screenshot) -> None:  # type: ignore[no-untyped-def]
    """A finished solution is CE-marked by default; the asker can say it is not, and the roadmap follows."""
    page.goto(f"{live_server}/roadmap?lang=en&scenario=loesning&a=medical_purpose:yes")
    page.wait_for_selector(".step[data-step-id=require-ce-evidence]")
    assert page.locator(".step[data-step-id=clinical-investigation]").count() == 0
    default = page.locator("#answer-list dd[data-key=ce_marked]")
    assert "given by the scenario" in default.inner_text()
    options = default.locator(".change-options")
    assert options.is_hidden()
    default.locator("button.link-button").click()
    assert options.is_visible()
    assert options.locator("button").all_inner_texts() == ["No", "Don't know"]  # not the value it has
    screenshot("change-default")
    options.locator("button[data-value=no]").click()
    page.wait_for_selector(".step[data-step-id=clinical-investigation]")
    assert page.locator(".step[data-step-id=require-ce-evidence]").count() == 0
    changed = page.locator("#answer-list dd[data-key=ce_marked]")
    assert "given by the scenario" not in changed.inner_text() and changed.inner_text().startswith("No")
    assert "ce_marked" in page.url
    # the asker's answer can be taken back, and the scenario's default returns
    changed.locator("button").click()
    page.wait_for_selector(".step[data-step-id=require-ce-evidence]")
