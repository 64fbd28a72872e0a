"""The Danish–English lexicon learnt from the parallel passages, and the cross-language keyword list it feeds."""

from __future__ import annotations

import pytest

from kb.keywords import tokenize
from kb.knowledge_base import KnowledgeBase
from kb.lexicon import learn_lexicon


def test_learns_translations_from_aligned_pairs() -> None:
    pairs = [
        ("Idriftsætteren skal opbevare logfiler.", "The deployer shall keep logs."),
        ("Idriftsætteren sikrer menneskeligt tilsyn.", "The deployer ensures human oversight."),
        ("Idriftsætteren informerer udbyderen.", "The deployer informs the provider."),
        ("Udbyderen skal have et kvalitetsstyringssystem.", "The provider shall have a quality management system."),
        ("Udbyderen opbevarer dokumentation.", "The provider keeps documentation."),
        ("Udbyderen retter fejl.", "The provider corrects errors."),
    ]
    lexicon = learn_lexicon(pairs)
    assert lexicon["da"][tokenize("idriftsætteren", "da")[0]][0] == tokenize("deployer", "en")[0]
    assert lexicon["en"][tokenize("provider", "en")[0]][0] == tokenize("udbyderen", "da")[0]


@pytest.mark.slow
def test_danish_question_reaches_english_only_text_by_keywords(small_kb: KnowledgeBase) -> None:
    lexicon = small_kb.keywords.lexicon
    assert lexicon["da"] and lexicon["en"], "the AI Act, GDPR and NIS2 subsets give aligned pairs"
    translated = small_kb.retriever._translated_keywords("Hvad er idriftsætterens forpligtelser?", 50, None, None, None, True)
    assert translated
    rows = {r.passage_id: r for r in small_kb.keywords.rows}
    assert {rows[pid].language for pid in translated} == {"en"}
