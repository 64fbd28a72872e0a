"""The law in force (issue 15): the amended AI Act, the Digital Omnibus on AI, Directive 2014/24/EU in two versions,
the EHDS annexes, and the version in force per provision across languages; on the test subset's real knowledge base."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from kb.versions import changed_refs, search_changed

CONSOLIDATED = "consolidated 2026-07-27"
ORIGINAL = "OJ L, 12.7.2024"
ANNEX_III_EN = "From when do the obligations for high-risk AI systems listed in Annex III apply?"
ANNEX_III_DA = "Hvornår gælder forpligtelserne for højrisiko-AI-systemer i bilag III?"


def _cited(answer, ref: str):  # type: ignore[no-untyped-def]
    return [c for c in answer.citations if c.ref == ref or c.ref.startswith(ref + ".")]


def test_stats_list_the_new_acts_the_versions_and_the_ehds_annexes(small_kb) -> None:  # type: ignore[no-untyped-def]
    stats = small_kb.stats()["documents"]
    assert {"digital-omnibus-ai", "procurement-directive"} <= set(stats)
    ai = {(v["version"], tuple(sorted(v["languages"]))): v for v in stats["ai-act"]["versions"]}
    assert set(ai) == {(CONSOLIDATED, ("en",)), (ORIGINAL, ("da", "en"))}
    assert ai[(CONSOLIDATED, ("en",))]["in_force"] and ai[(CONSOLIDATED, ("en",))]["valid_to"] == ""
    assert ai[(ORIGINAL, ("da", "en"))]["valid_to"] == "2026-07-26"
    assert "art-113" in ai[(CONSOLIDATED, ("en",))]["amended"] and "art-26" not in ai[(CONSOLIDATED, ("en",))]["amended"]
    assert all(v["passages"] > 0 for v in ai.values())
    directive = [v["version"] for v in stats["procurement-directive"]["versions"]]
    assert directive == ["consolidated 2026-01-01", "OJ L 94, 28.3.2014"]  # newest first
    annexes = {p.ref.split(".")[0] for p in small_kb.passages_for_ref("ehds:annex-i")}
    assert annexes == {"ehds:annex-i"}
    assert {"ehds:annex-ii", "ehds:annex-iii", "ehds:annex-iv"} <= {
        p.ref.split(".")[0] for r in ("ehds:annex-ii", "ehds:annex-iii", "ehds:annex-iv") for p in small_kb.passages_for_ref(r)
    }


def test_in_force_is_settled_per_provision_across_languages(small_kb) -> None:  # type: ignore[no-untyped-def]
    every = small_kb.passages_for_ref("ai-act:art-113", in_force_only=False) + small_kb.passages_for_ref(
        "ai-act:art-26", in_force_only=False
    )
    state = {(p.ref.split(".")[0], p.language, p.version): p.in_force for p in every}
    assert state[("ai-act:art-113", "en", CONSOLIDATED)] is True
    assert state[("ai-act:art-113", "da", ORIGINAL)] is False  # changed: superseded by the English wording in force
    assert state[("ai-act:art-26", "da", ORIGINAL)] is True  # not changed: the Danish text stays in force
    assert state[("ai-act:art-113", "en", ORIGINAL)] is False and state[("ai-act:art-26", "en", ORIGINAL)] is False
    in_force = small_kb.passages_for_ref("ai-act:art-113")
    assert {p.language for p in in_force} == {"en"} and all(p.amended_by == "2026/1744" for p in in_force)
    assert in_force[0].version_note == "amended by Regulation (EU) 2026/1744, in force from 27.7.2026"
    assert in_force[0].model_dump()["version_note"] == in_force[0].version_note  # what the passage view gets
    assert in_force[0].amending_refs == ["digital-omnibus-ai:art-1.40"]


def test_an_amended_article_keeps_in_force_the_danish_points_it_left_unchanged(small_kb) -> None:  # type: ignore[no-untyped-def]
    # the omnibus amended Article 3 (its definitions), but not the definition of 'deployer' (Article 3(4))
    deployer = {p.version: p for p in small_kb.passages_for_ref("ai-act:art-3.4", in_force_only=False)}
    consolidated = deployer["consolidated 2026-07-27"]
    original_en = next(p for p in small_kb.passages_for_ref("ai-act:art-3.4", "en", in_force_only=False) if p.version != consolidated.version)
    assert consolidated.amended_by and consolidated.text == original_en.text
    danish = small_kb.passages_for_ref("ai-act:art-3.4", "da")
    assert danish and danish[0].in_force
    changed = small_kb.passages_for_ref("ai-act:art-113", "da", in_force_only=False)
    assert changed and not any(p.in_force for p in changed)  # Article 113's changed wording is not
    assert small_kb.ask("Hvad er en idriftsætter?").citations[0].ref == "ai-act:art-3.4"


def test_the_english_question_gets_the_date_in_force(small_kb) -> None:  # type: ignore[no-untyped-def]
    answer = small_kb.ask(ANNEX_III_EN)
    cited = _cited(answer, "ai-act:art-113")
    assert cited and {c.version for c in cited} == {CONSOLIDATED}
    assert "2 December 2027" in answer.answer
    assert cited[0].version_note == "amended by Regulation (EU) 2026/1744, in force from 27.7.2026"
    assert answer.notes == []  # asked in the language of the wording in force


def test_the_danish_question_gets_the_wording_in_force_and_the_danish_note(small_kb) -> None:  # type: ignore[no-untyped-def]
    answer = small_kb.ask(ANNEX_III_DA)
    assert answer.language == "da"
    cited = _cited(answer, "ai-act:art-113")
    assert cited and {(c.version, c.language) for c in cited} == {(CONSOLIDATED, "en")}
    assert "2 December 2027" in answer.answer
    note = next(n for n in answer.notes if "(ai-act:art-113)" in n)  # Art. 6, amended too, may have its own
    assert note.startswith("Den danske tekst i vidensbasen er den oprindelige fra 2024")
    assert "forordning (EU) 2026/1744 med virkning fra 27. juli 2026" in note
    assert "ai-act:art-113" in note and "digital-omnibus-ai:art-1.40" in note  # the amended and the amending article


@pytest.mark.parametrize("question", [ANNEX_III_EN, ANNEX_III_DA])
def test_as_of_before_the_amendment_gives_the_2024_wording(small_kb, question: str) -> None:  # type: ignore[no-untyped-def]
    answer = small_kb.ask(question, as_of=date(2025, 6, 1))
    cited = _cited(answer, "ai-act:art-113")
    assert cited and {c.version for c in cited} == {ORIGINAL} and {c.language for c in cited} == {answer.language}
    # the 2024 wording: "It shall apply from 2 August 2026" (Danish "2. august 2026"); not the omnibus's dates
    assert re.search(r"2\.? august 2026", cited[0].text, re.I)
    assert not re.search(r"2\.? december 2027", answer.answer + cited[0].text, re.I)
    assert answer.notes == [] and all(c.version == ORIGINAL for c in answer.citations if c.doc_id == "ai-act")


def test_an_unchanged_article_asked_in_danish_gives_the_danish_text_in_force(small_kb) -> None:  # type: ignore[no-untyped-def]
    answer = small_kb.ask("Hvilke forpligtelser har idriftsættere af højrisiko-AI-systemer efter artikel 26?")
    cited = _cited(answer, "ai-act:art-26")
    assert cited and all(c.language == "da" and c.version == ORIGINAL and c.in_force for c in cited)
    assert all(c.version_note is None for c in cited) and answer.notes == []


def test_search_changed_since_finds_only_changed_provisions(small_kb) -> None:  # type: ignore[no-untyped-def]
    changed = changed_refs(small_kb.catalog, date(2026, 1, 1))
    assert "ai-act:art-113" in changed and "ai-act:art-26" not in changed
    assert changed_refs(small_kb.catalog, date(2026, 8, 1)) == []  # nothing applies from after that date
    hits = search_changed(small_kb, "from which date shall this Regulation apply", date(2026, 1, 1), k=10)
    assert hits and all(h.passage.amended_by and h.passage.in_force for h in hits)
    assert all(h.summary()["version_note"] for h in hits)
    assert "ai-act:art-113" in {h.passage.ref.split(".")[0] for h in hits}


def test_the_clause_view_of_article_113_shows_old_and_new_wording(small_kb) -> None:  # type: ignore[no-untyped-def]
    from kb.clauses import clause_view

    view = clause_view(small_kb, "ai-act:art-113", "da", similar=0)
    assert view["language"] == "en" and view["version"] == CONSOLIDATED  # no Danish wording in force
    change = view["change"]
    assert change["old_version"] == ORIGINAL and change["old_language"] == "en" and change["superseded_languages"] == ["da"]
    added = " ".join(s["text"] for s in change["new"] if s["changed"])
    removed = " ".join(s["text"] for s in change["old"] if s["changed"])
    assert "December" in added and "Annex III" in added  # point (c): 2 December 2027 for Annex III systems
    assert "2 August 2027" in removed  # the old point (c): Article 6(1) and its obligations from 2 August 2027
    assert "".join(s["text"] for s in change["new"]) == "\n".join(p.text for p in view["passages"])
    assert [link["ref"] for link in change["amending"]] == ["digital-omnibus-ai:art-1.40"]
    assert change["amending"][0]["known"]
    assert clause_view(small_kb, "ai-act:art-26", "da", similar=0)["change"] is None


def test_the_directive_and_udbudsloven_lead_to_each_other(small_kb) -> None:  # type: ignore[no-untyped-def]
    from kb.clauses import clause_view

    article = clause_view(small_kb, "procurement-directive:art-31", "en", similar=0)
    assert article["version"] == "consolidated 2026-01-01"
    (link,) = article["transpositions"]
    assert link["direction"] == "implemented_by" and link["source"] == "udbudsloven:§-55"
    assert [lk["ref"] for lk in link["links"]][:2] == ["udbudsloven:§-73", "udbudsloven:§-74"]
    assert all(lk["known"] for lk in link["links"])
    section = clause_view(small_kb, "udbudsloven:§-61", "da", similar=0)
    assert [t["refs"] for t in section["transpositions"]] == [["procurement-directive:art-29"]]
    assert section["transpositions"][0]["links"][0]["known"]


def test_an_english_question_on_the_innovation_partnership_reaches_the_directive(small_kb) -> None:  # type: ignore[no-untyped-def]
    answer = small_kb.ask("When can a contracting authority use an innovation partnership?")
    cited = _cited(answer, "procurement-directive:art-31")
    assert cited and cited[0].version == "consolidated 2026-01-01"
    assert "udbudsloven:§-73" in cited[0].implemented_by


# --- the transposition data, checked against both texts --------------------------------------------------------


def test_every_transposition_link_is_what_the_texts_say(corpus_dir: Path) -> None:
    from ingest.parsers import get_parser
    from kb.transpositions import links

    act = {u.locator: "\n".join(p.text for p in u.paragraphs) for u in get_parser("retsinformation_json")(
        [corpus_dir / "udbudsloven/da/lbk-2025-116.json"], {}
    )}
    directive = {u.locator: u.heading for u in get_parser("formex_consolidated")(
        [corpus_dir / "procurement-directive/en/consolidated-2026-01-01/CL2014L0024EN0060010.0001.xml"], {}
    )}
    section_55 = re.sub(r"\s+", " ", act["§-55"])
    for link in links():
        article = link["directive"].split(":")[1]
        assert directive[article].endswith(link["heading"]), (link["directive"], directive[article])
        sections = [a.split(":")[1] for a in link["act"]]
        assert all(s in act for s in sections), link
        if link["source"] == "udbudsloven:§-55":
            assert link["says"] in section_55, link["says"]
            first, last = re.findall(r"§§ (\d+)(?:-| og )(\d+)", link["says"])[0]
            assert sections == [f"§-{n}" for n in range(int(first), int(last) + 1)], link
        else:
            assert link["source"] == "heading"
            assert link["says"] in act[sections[0]].lower(), link


def test_roadmap_steps_on_amended_provisions_follow_the_new_wording(small_kb) -> None:  # type: ignore[no-untyped-def]
    """Art. 4 (AI literacy) was amended: measures to support it, no guaranteed level. The roadmap step says so."""
    from kb.roadmap import load_rules

    step = next(s for s in load_rules().steps if s.id == "ai-literacy")
    assert "support" in step.what.en and "no specific level" in step.what.en
    assert "sufficient" not in step.what.en
    consolidated = "ai-act/en/consolidated-2026-07-27"
    from ingest.manifest import load_manifest, resolve_files
    from ingest.pipeline import parse_text
    from kb.settings import REPO_ROOT

    manifest = load_manifest(REPO_ROOT / "ingest" / "manifest.yaml")
    doc = manifest.document("ai-act")
    text = next(t for t in doc.texts if t.key("ai-act") == consolidated)
    art4 = [p for p in parse_text(doc, text, resolve_files(text, small_kb.settings.corpus_dir), 1800) if p.ref == "ai-act:art-4.1"]
    assert art4[0].amended_by == "2026/1744"
    assert "support the development of AI literacy" in art4[0].text
    assert "does not require providers or deployers to guarantee any specific level" in art4[0].text


def test_a_faulty_consolidation_is_reported_and_nothing_of_it_written(small_kb, tmp_path: Path, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A marker that never closes: the ingest names the file and the provision, and the store stays as it was."""
    import shutil

    import yaml

    from ingest.pipeline import ingest

    rel = "ai-act/en/consolidated-2026-07-27/CL2024R1689EN0010010.0001.xml"
    corpus = tmp_path / "corpus"
    (corpus / rel).parent.mkdir(parents=True)
    text = (corpus_dir / rel).read_text(encoding="utf-8")
    start = text.index("<TI.ART>Article 113")
    marker = re.compile(r'<\?CLG\.MDFO ID="O(\w+)"').search(text, start)[1]
    (corpus / rel).write_text(re.sub(rf'<\?CLG\.MDFC ID="C{marker}"[^>]*\?>', "", text, count=1), encoding="utf-8")
    shutil.copytree(corpus_dir / "ai-act/en/formex", corpus / "ai-act/en/formex")
    data = yaml.safe_load(small_kb.settings.manifest.read_text(encoding="utf-8"))
    doc = next(d for d in data["documents"] if d["doc_id"] == "ai-act")
    doc["texts"] = [t for t in doc["texts"] if t["version"] == CONSOLIDATED]
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"documents": [doc]}, allow_unicode=True))
    before = small_kb.store.hashes()
    report = ingest(small_kb, corpus, manifest, only={"ai-act"})
    (failed,) = report.failed
    assert rel in failed.error and "Article 113" in failed.error and "never closes" in failed.error
    assert small_kb.store.hashes() == before  # the text in force before stays whole; nothing of the faulty one
