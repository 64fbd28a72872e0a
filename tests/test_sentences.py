"""The sentence splitter on real passages of every act in the corpus (parsed and split, no embedding)."""

from __future__ import annotations

import re

import pytest

from kb.passage import Passage
from kb.sentences import NON_FINAL, ends_cleanly, is_abbreviation, split_sentences

# the two sentences the old splitter cut ("... artikels stk. [1]", "... genoptage tilbudsevalueringen, når [1]")
ART_27_4 = "supplerer den i nærværende artikels stk. 1 omhandlede konsekvensanalyse"
PARAGRAPH_170 = "En ordregiver kan tilbagekalde en tildelingsbeslutning og genoptage tilbudsevalueringen, når"


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_every_act_is_split_into_sentences_that_rejoin_and_end_cleanly(corpus_passages: dict[str, list[Passage]]) -> None:
    docs = {key.split("/")[0] for key in corpus_passages}
    assert len(docs) >= 18, docs
    for key, passages in corpus_passages.items():
        assert passages, key
        cut = []
        for p in passages:
            sentences = split_sentences(p.text)
            assert _squash(" ".join(sentences)) == _squash(p.text), (key, p.passage_id)
            # a sentence before the last ends as a sentence ends: never in "stk.", "nr.", "jf.", "f.eks.", "e.g.",
            # a bare number, a comma or a colon (the last may be cut by the passage's own end)
            cut += [(p.passage_id, s[-60:]) for s in sentences[:-1] if not ends_cleanly(s)]
        assert not cut, (key, cut[:5])


def test_no_sentence_ends_in_a_danish_or_eu_abbreviation(corpus_passages: dict[str, list[Passage]]) -> None:
    ending = re.compile(r"(?:^|\s)(\S+)\.$")
    found = 0
    for key, passages in corpus_passages.items():
        for p in passages:
            for s in split_sentences(p.text)[:-1]:
                match = ending.search(s.rstrip("\"'”’»«)] "))
                if match:
                    found += 1
                    assert not is_abbreviation(match.group(1)), (key, p.passage_id, s[-60:])
                    assert not re.search(r"(?:^|[\s(])(?:stk|nr|jf|Art|f\.eks|bl\.a|e\.g|i\.e|cf|p|pp)\.$", s), (p.passage_id, s[-60:])
    assert found > 5_000  # the check looked at the corpus's sentences, not at nothing


def test_the_two_sentences_the_old_splitter_cut_stay_whole(corpus_passages: dict[str, list[Passage]]) -> None:
    art_27_4 = next(p for p in corpus_passages["ai-act/da/oj-l-12-7-2024"] if p.ref == "ai-act:art-27.4")
    assert [s for s in split_sentences(art_27_4.text) if ART_27_4 in s] == [art_27_4.text.strip()]
    paragraph = next(p for p in corpus_passages["udbudsloven/da/lbk-116-2025"] if p.ref == "udbudsloven:§-170.1")
    sentences = split_sentences(paragraph.text)
    assert sentences == [paragraph.text.strip()]  # the introduction ending in "når" keeps all four points
    assert sentences[0].startswith(PARAGRAPH_170) and "4) samtlige tilbudsgivere" in sentences[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # abbreviations and references
        ("Jf. § 3, stk. 2. Dette gælder også.", ["Jf. § 3, stk. 2.", "Dette gælder også."]),
        ("Det følger af bl.a. artikel 5. F.eks. gælder det for data.", ["Det følger af bl.a. artikel 5.", "F.eks. gælder det for data."]),
        ("See e.g. Regulation (EU) 2016/679. It applies.", ["See e.g. Regulation (EU) 2016/679.", "It applies."]),
        ("It applies from 2 August 2026. The rest follows.", ["It applies from 2 August 2026.", "The rest follows."]),
        ("Forordningen anvendes fra den 2. august 2026. Dog gælder artikel 5.", ["Forordningen anvendes fra den 2. august 2026.", "Dog gælder artikel 5."]),
        ("Som nævnt i 2. pkt. Hvis ordregiveren ønsker det, kan den.", ["Som nævnt i 2. pkt.", "Hvis ordregiveren ønsker det, kan den."]),
        ("(OJ L 312, 7.12.2018, p. 1). Art. 5 applies.", ["(OJ L 312, 7.12.2018, p. 1).", "Art. 5 applies."]),
        # an introduction keeps all its points, whatever they end with
        (
            "Klage kan indgives af:\n1) Enhver, der har en retlig interesse heri.\n2) Konkurrence- og Forbrugerstyrelsen.\nStk. 2. Andet.",
            ["Klage kan indgives af:\n1) Enhver, der har en retlig interesse heri.\n2) Konkurrence- og Forbrugerstyrelsen.", "Stk. 2. Andet."],
        ),
        (
            "This Regulation lays down:\n(a) rules;\n(b) prohibitions; and\n(c) requirements.\nIt also applies.",
            ["This Regulation lays down:\n(a) rules;\n(b) prohibitions; and\n(c) requirements.", "It also applies."],
        ),
        ("Straffes den, der\n1) overtræder § 2,\n2) undlader at efterkomme et påbud.", ["Straffes den, der\n1) overtræder § 2,\n2) undlader at efterkomme et påbud."]),
        ("Infection and microbial contamination\n11.1. Devices shall be designed. They shall.", ["Infection and microbial contamination", "11.1. Devices shall be designed.", "They shall."]),
    ],
)
def test_split_cases(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_the_abbreviation_lists_hold_what_the_brief_names() -> None:
    for abbreviation in ("stk.", "nr.", "jf.", "f.eks.", "bl.a.", "kap.", "lit.", "e.g.", "i.e.", "cf.", "p.", "pp.", "para.", "no."):
        assert is_abbreviation(abbreviation), abbreviation
    assert is_abbreviation("Art.") and is_abbreviation("Reg.") and not is_abbreviation("art.")  # "state of the art."
    assert "stk" in NON_FINAL and not is_abbreviation("artikel.")  # "... i denne artikel." ends a sentence
