"""What a parser gives back: the structural units of one source text.

A parser knows a format; it does not decide passage sizes. It returns units
(an article, an annex, a recital, a §, a contract clause, a PDF page) with
their paragraphs, numbered where the text numbers them. The splitter
(`ingest.splitter`) turns units into passages with references.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kb.errors import ParseError as ParseError  # defined with every other error; re-exported for the parsers


@dataclass
class Paragraph:
    """A paragraph of a unit.

    `number` is the sub-locator the text gives it: "1" for Article 26(1) or
    stk. 1, "12" for the 12th definition, "5" for point 5 of Annex III. A
    paragraph without a number continues the numbered one before it (or is
    the unit's introduction when it comes first).
    """

    text: str
    number: str | None = None
    page: int | None = None


@dataclass
class Unit:
    """One structural unit of a source text.

    `locator` follows DESIGN's grammar without the doc id: `art-26`,
    `annex-iii`, `recital-47`, `§-73`, `section-5.2`, `page-3`.
    `heading` is what a reader sees above it, e.g. "Article 26 – Obligations of
    deployers of high-risk AI systems" or "§ 73"; it is carried into every
    passage cut from the unit.
    `definitions=True` marks a definitions article: each numbered paragraph is
    one definition and becomes its own passage.
    `amended_by` names the act that changed the unit in a consolidated text.
    """

    locator: str
    heading: str
    paragraphs: list[Paragraph] = field(default_factory=list)
    page: int | None = None
    definitions: bool = False
    # Set by a consolidation's parser when an amending act changed the unit: the act ("2026/1744") and the
    # amending act's provisions that did it ("digital-omnibus-ai:art-1.51").
    amended_by: str | None = None
    amending_refs: list[str] = field(default_factory=list)


