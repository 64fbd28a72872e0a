"""The reference grammar and the citations found in running text."""

from __future__ import annotations

import pytest

from kb.references import covers, extract_citations, is_reference, parent_references, parse_reference


@pytest.mark.parametrize(
    "ref",
    [
        "ai-act:art-26",
        "ai-act:art-26.1",
        "ai-act:art-3.12",
        "ai-act:art-10a",
        "ai-act:annex-iii",
        "ai-act:annex-iii.5",
        "ai-act:recital-47",
        "udbudsloven:§-73",
        "udbudsloven:§-5a",
        "udbudsloven:§-73.2",
        "mcc-ai-high-risk:section-5.2",
        "hleg-ethics-guidelines:page-12",
    ],
)
def test_valid_references(ref: str) -> None:
    assert is_reference(ref)


@pytest.mark.parametrize(
    "ref",
    ["ai-act", "ai-act:article-26", "AI-act:art-26", "ai-act:art-", "ai-act:annex-3", "udbudsloven:§73", "x:page-a", "ai-act:art-26."],
)
def test_invalid_references(ref: str) -> None:
    assert not is_reference(ref)
    with pytest.raises(ValueError, match="not a reference"):
        parse_reference(ref)


def test_prefix_rule() -> None:
    assert covers("ai-act:art-26", "ai-act:art-26.1")
    assert covers("ai-act:art-26", "ai-act:art-26")
    assert not covers("ai-act:art-26", "ai-act:art-260")
    assert not covers("ai-act:art-26.1", "ai-act:art-26")
    assert parent_references("ai-act:annex-viii.a.1") == ["ai-act:annex-viii.a.1", "ai-act:annex-viii.a", "ai-act:annex-viii"]


@pytest.mark.parametrize(
    ("text", "doc", "expected"),
    [
        ("the high-risk AI systems referred to in Article 6(2)", "ai-act", ["ai-act:art-6.2"]),
        ("listed in Annex III, point 5", "ai-act", ["ai-act:annex-iii.5"]),
        ("de højrisiko-AI-systemer, der er omhandlet i artikel 6, stk. 2, og bilag III", "ai-act", ["ai-act:art-6.2", "ai-act:annex-iii"]),
        ("in accordance with Article 9 of Regulation (EU) 2016/679", "ai-act", ["gdpr:art-9"]),
        ("Articles 6 and 7", "ai-act", ["ai-act:art-6", "ai-act:art-7"]),
        ("jf. § 24, nr. 3, og § 73, stk. 2", "udbudsloven", ["udbudsloven:§-24", "udbudsloven:§-73.2"]),
        ("§§ 61-63", "udbudsloven", ["udbudsloven:§-61", "udbudsloven:§-62", "udbudsloven:§-63"]),
        ("efter § 5 a", "udbudsloven", ["udbudsloven:§-5a"]),
        ("Article 5 of Directive 2014/24/EU", "ai-act", []),
        # the act named before the provision, in the Danish genitive, wins over one named further on
        ("jf. databeskyttelsesforordningens art. 33, bistår", "erst-it-rammeaftale", ["gdpr:art-33"]),
        ("udbudslovens § 24 og artikel 9 i databeskyttelsesforordningen", "sundhedsloven", ["udbudsloven:§-24", "gdpr:art-9"]),
        ("efter databeskyttelsesforordningens artikel 9, stk. 1", "databeskyttelsesloven", ["gdpr:art-9.1"]),
        # "forordningens artikel 32": the regulation named earlier in the text, or nothing
        ("databeskyttelsesforordningen gælder. Efter forordningens artikel 32 skal", "erst-it-rammeaftale", ["gdpr:art-32"]),
        ("Efter forordningens artikel 32 skal databehandleren", "erst-it-rammeaftale", []),
        # a contract or guidance has no articles of its own: an unnamed or unknown act is dropped
        ("within the meaning of Article 6 and listed", "mcc-ai-high-risk", []),
        ("Think of the GDPR. Article 42 of the Public Procurement Directive requires", "hleg-ethics-guidelines", []),
        ("Reference can be made to Article 22 of the GDPR where", "hleg-ethics-guidelines", ["gdpr:art-22"]),
        ("as explained in recital 47", "ai-act", ["ai-act:recital-47"]),
    ],
)
def test_extract_citations(text: str, doc: str, expected: list[str]) -> None:
    assert extract_citations(text, doc) == expected
