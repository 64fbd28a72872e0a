"""A Danish–English lexicon of stemmed legal terms, learnt from the parallel texts in the knowledge base.

BM25 matches words, so a Danish question cannot find an English-only text (MDR,
EHDS, the MCC-AI) by its words, nor an English question a Danish act. The AI
Act, the GDPR and NIS2 are here in both languages with the same references;
from those aligned passages we count which stems occur together (Dice
coefficient) and keep, per stem, the few most associated stems of the other
language. A question's keyword query is then expanded with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from kb.keywords import tokenize

MIN_PAIRS = 3  # a stem must occur in this many aligned passages to be translated
MIN_DICE = 0.3  # association needed to count as a translation (chosen by reading the learnt pairs, not tuned)
PER_STEM = 2


def learn_lexicon(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, list[str]]]:
    """From aligned (Danish text, English text) pairs: {"da": {stem: [en stems]}, "en": {stem: [da stems]}}."""
    df_da: Counter[str] = Counter()
    df_en: Counter[str] = Counter()
    together: Counter[tuple[str, str]] = Counter()
    aligned = [(set(tokenize(da, "da")), set(tokenize(en, "en"))) for da, en in pairs]
    for da, en in aligned:
        df_da.update(da)
        df_en.update(en)
    for da, en in aligned:
        da_kept = [w for w in da if df_da[w] >= MIN_PAIRS and not w.isdigit()]
        en_kept = [w for w in en if df_en[w] >= MIN_PAIRS and not w.isdigit()]
        together.update((w, e) for w in da_kept for e in en_kept)
    candidates: dict[str, list[tuple[float, str]]] = {}
    reverse: dict[str, list[tuple[float, str]]] = {}
    for (w, e), count in together.items():
        if count < MIN_PAIRS or w == e:
            continue
        dice = 2 * count / (df_da[w] + df_en[e])
        if dice >= MIN_DICE:
            candidates.setdefault(w, []).append((dice, e))
            reverse.setdefault(e, []).append((dice, w))
    return {
        "da": {w: [e for _, e in sorted(c, reverse=True)[:PER_STEM]] for w, c in candidates.items()},
        "en": {e: [w for _, w in sorted(c, reverse=True)[:PER_STEM]] for e, c in reverse.items()},
    }
