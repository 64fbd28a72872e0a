"""The clause finder's API and pages over the subset knowledge base, in process (`make_app_client`)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from kb.knowledge_base import KnowledgeBase
from kb.references import covers
from tests.conftest import make_app_client

pytestmark = pytest.mark.slow

LAW_KINDS = {"regulation", "directive", "act"}


@pytest.fixture(scope="module")
def client(small_kb: KnowledgeBase) -> Iterator[httpx.Client]:
    with make_app_client(small_kb) as c:
        yield c


def test_clause_holds_both_languages_and_its_references(client: httpx.Client, small_kb: KnowledgeBase) -> None:
    body = client.get("/api/clauses/ai-act:art-26").json()
    assert body["ref"] == "ai-act:art-26"
    assert body["language"] == "da" and body["languages"] == ["da", "en"]
    assert body["passages"] and all(p["language"] == "da" for p in body["passages"])
    assert body["parallel"] and all(p["language"] == "en" for p in body["parallel"])
    assert {p["ref"] for p in body["passages"]} == {p["ref"] for p in body["parallel"]}
    assert all(covers("ai-act:art-26", p["ref"]) for p in body["passages"])
    # Article 26 refers to Annex III and Article 13, both held by the subset, and never to itself
    cited = {link["ref"]: link for link in body["cites"]}
    assert "ai-act:annex-iii" in cited and cited["ai-act:annex-iii"]["known"]
    assert cited["ai-act:annex-iii"]["heading"].startswith("Bilag III")
    assert not any(covers("ai-act:art-26", ref) for ref in cited)
    # the similar provisions come from other documents
    assert body["similar"] and all(s["doc_id"] != "ai-act" for s in body["similar"])
    english = client.get("/api/clauses/ai-act:art-26", params={"lang": "en"}).json()
    assert english["language"] == "en" and english["passages"][0]["heading"].startswith("Article 26")


def test_cited_by_is_the_reverse_of_cites(client: httpx.Client, small_kb: KnowledgeBase) -> None:
    citing = [p for p in small_kb.store.iter_passages() if p.in_force and any(covers("gdpr:art-9", c) for c in p.cites)]
    assert citing, "the subset should hold a passage citing GDPR Article 9"
    body = client.get("/api/clauses/gdpr:art-9").json()
    cited_by = {link["ref"] for link in body["cited_by"]}
    assert {p.ref for p in citing if not covers("gdpr:art-9", p.ref)} <= cited_by
    assert "ai-act:art-3.37" in cited_by  # the AI Act's definition of special categories of personal data


def test_contract_clause_leads_to_the_law_behind_it(client: httpx.Client) -> None:
    # the framework agreement's data processing agreement (Bilag 7) rests on GDPR Article 28
    body = client.get("/api/clauses/erst-it-rammeaftale:section-16").json()
    assert body["kind"] == "contract"
    assert body["similar"] and all(s["kind"] in LAW_KINDS for s in body["similar"])
    assert any(covers("gdpr:art-28", s["ref"]) for s in body["similar"])


def test_similar_provisions_rest_on_the_whole_provision(client: httpx.Client) -> None:
    """The same neighbours whichever language is shown, one per article; the model clauses' human oversight
    clause leads to AI Act Article 14 (human oversight)."""
    danish = client.get("/api/clauses/ai-act:art-26", params={"lang": "da"}).json()["similar"]
    english = client.get("/api/clauses/ai-act:art-26", params={"lang": "en"}).json()["similar"]
    assert danish and [s["ref"] for s in danish] == [s["ref"] for s in english]
    units = [s["ref"].split(".")[0] for s in danish]
    assert len(units) == len(set(units)), units
    oversight = client.get("/api/clauses/mcc-ai-high-risk:section-7").json()
    assert oversight["heading"].endswith("Human oversight")
    assert covers("ai-act:art-14", oversight["similar"][0]["ref"]), oversight["similar"]


def test_no_similar_provisions_asked_for(client: httpx.Client) -> None:
    # found by the schemathesis run: similar=0 reached Chroma as n_results=0 and gave a 500
    response = client.get("/api/clauses/ai-act:art-26", params={"similar": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["similar"] == [] and body["passages"]


def test_danish_reference_with_section_sign(client: httpx.Client) -> None:
    response = client.get("/api/clauses/" + quote("udbudsloven:§-5", safe=":"))
    assert response.status_code == 200, response.text
    assert response.json()["passages"][0]["ref"].startswith("udbudsloven:§-5")


@pytest.mark.parametrize(
    ("path", "status", "code", "field"),
    [
        ("/api/clauses/ai-act:art-999", 404, "unknown_reference", "ref"),
        ("/api/clauses/not-a-reference", 422, "invalid_ref", "ref"),
        ("/api/clauses/ai-act:art-26?lang=de", 422, "invalid_lang", "lang"),
        ("/api/clauses?q=data&kind=poem", 422, "invalid_kind", "kind"),
        ("/api/clauses?q=data&scenario=later", 422, "invalid_scenario", "scenario"),
        ("/api/clauses?q=data&doc=nope", 422, "invalid_doc", "doc"),
        ("/api/clauses?q=%20", 422, "invalid_q", "q"),
    ],
)
def test_errors_have_the_one_shape(client: httpx.Client, path: str, status: int, code: str, field: str) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["field"] == field and error["status"] == status


def test_find_clauses_filters(client: httpx.Client) -> None:
    law = client.get("/api/clauses", params={"q": "databehandler", "kind": "law"}).json()
    assert law and all(h["kind"] in LAW_KINDS for h in law)
    contracts = client.get("/api/clauses", params={"q": "databehandler", "kind": "contract"}).json()
    assert contracts and all(h["kind"] == "contract" for h in contracts)
    english = client.get("/api/clauses", params={"q": "processor", "lang": "en"}).json()
    assert english and all(h["language"] == "en" for h in english)
    from kb.scenarios import in_profile, profile_refs

    profile = profile_refs("loesning")
    scenario = client.get("/api/clauses", params={"q": "databehandler", "scenario": "loesning"}).json()
    assert scenario and all(in_profile(profile, h["ref"]) for h in scenario)


def test_the_scenario_filter_searches_within_the_profile(client: httpx.Client) -> None:
    """The corpus's best 50 for "innovationspartnerskab" hold only a few of the demo scenario's provisions; the
    filter searches the profile itself, so a full page of them comes back, the best of those few first."""
    from kb.scenarios import in_profile, profile_refs

    profile = profile_refs("demo")
    everything = client.get("/api/clauses", params={"q": "innovationspartnerskab", "k": 50}).json()
    filtered_afterwards = [h for h in everything if in_profile(profile, h["ref"])]
    assert 0 < len(filtered_afterwards) < 5, filtered_afterwards
    within = client.get("/api/clauses", params={"q": "innovationspartnerskab", "scenario": "demo"}).json()
    assert len(within) == 20 and all(in_profile(profile, h["ref"]) for h in within)
    assert filtered_afterwards[0]["passage_id"] in {h["passage_id"] for h in within[:5]}
    english = client.get("/api/clauses", params={"q": "innovationspartnerskab", "scenario": "demo", "lang": "en"})
    english = english.json()
    assert english and all(h["language"] == "en" and in_profile(profile, h["ref"]) for h in english)


def test_pages_are_served_with_their_assets(client: httpx.Client) -> None:
    for path in ("/", "/clauses", "/clauses/ai-act:art-26"):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>" not in page.text and "<style" not in page.text and "style=" not in page.text
    widget = client.get("/widget.js")
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    for asset in ("widget.css", "passage-view.js", "passage-view.css", "clauses.js", "clauses.css", "site.css"):
        assert client.get(f"/static/{asset}").status_code == 200, asset


def test_the_shared_helpers_load_first_and_the_widget_stays_one_script(client: httpx.Client) -> None:
    """common.js holds the helpers every script uses: each page loads it before its own scripts, and /widget.js, which
    other sites embed with one tag, is common.js and widget.js in one script."""
    import re

    from service.routes.pages import STATIC_DIR

    assert client.get("/static/common.js").status_code == 200
    for path in ("/clauses", "/clauses/ai-act:art-26", "/roadmap", "/contract"):
        scripts = re.findall(r'<script src="([^"]+)"', client.get(path).text)
        assert scripts[0] == "/static/common.js", (path, scripts)
    widget = client.get("/widget.js")
    common, own = ((STATIC_DIR / name).read_text(encoding="utf-8") for name in ("common.js", "widget.js"))
    assert widget.text == common + "\n" + own
    assert widget.headers["cache-control"] == "no-cache" and widget.headers["etag"]
    again = client.get("/widget.js", headers={"If-None-Match": widget.headers["etag"]})
    assert again.status_code == 304 and not again.content  # revalidated: not sent again
    assert client.get("/widget.js", headers={"If-None-Match": '"stale"'}).text == widget.text
