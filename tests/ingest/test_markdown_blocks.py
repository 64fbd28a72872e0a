"""The one reading of Markdown the parsers share (ingest/parsers/_markdown.py): markdown-it's blocks, with the
sources' conventions the line-by-line readers before it had (Word bullets, items numbered anywhere, pipe rows
without a delimiter row)."""

from __future__ import annotations

from ingest.parsers._markdown import Block, blocks


def _kinds(text: str, **options: bool) -> list[tuple[str, int, list[str]]]:
    return [(b.kind, b.start, b.lines) for b in blocks(text, **options)]


def test_blocks_in_source_order_with_their_lines() -> None:
    text = "# 1 Parter\n\nFørste linje\nanden linje\n\n- a\n  - b\n1. c\n\n| x | y |\n|---|---|\n| z | w |\n"
    found = blocks(text)
    assert [(b.kind, b.start) for b in found] == [
        ("heading", 0), ("paragraph", 2), ("item", 5), ("item", 6), ("item", 7), ("table", 9)
    ]  # fmt: skip
    heading, paragraph, *_, table = found
    assert (heading.level, heading.title) == (1, "1 Parter")
    assert paragraph.lines == ["Første linje", "anden linje"]
    assert [b.marker for b in found if b.kind == "item"] == ["", "", "1"]
    assert table.lines == ["| x | y |", "|---|---|", "| z | w |"]


def test_an_item_holds_the_lines_of_its_first_paragraph() -> None:
    (item,) = blocks("3) tre\nfortsat\n")
    assert item == Block("item", 0, ["3) tre", "fortsat"], marker="3")
    assert item.ordered


def test_lists_as_the_sources_write_them() -> None:
    # a numbered item interrupts a paragraph whatever its number (CommonMark: only "1."), keeping its number
    assert _kinds("Leverandøren skal:\n3. levere\n") == [
        ("paragraph", 0, ["Leverandøren skal:"]), ("item", 1, ["3. levere"])
    ]  # fmt: skip
    assert blocks("Tekst\n3. levere\n")[1].marker == "3"
    # a Word bullet is a bullet; four digits are a year, not a marker; a marker alone is text
    assert _kinds("• punkt\n") == [("item", 0, ["• punkt"])]
    assert _kinds("Tekst\n2024. Året\n") == [("paragraph", 0, ["Tekst", "2024. Året"])]
    assert _kinds("Tekst\n-\n") == [("paragraph", 0, ["Tekst", "-"])]
    # an item indented four columns is an item, not text of the paragraph above
    assert _kinds("Tekst\n    - dybt\n") == [("paragraph", 0, ["Tekst"]), ("item", 1, ["    - dybt"])]


def test_pipe_rows_are_a_table_without_a_delimiter_row() -> None:
    assert _kinds("Tekst\n| a | b |\n| c | d |\nefter\n") == [
        ("paragraph", 0, ["Tekst"]), ("table", 1, ["| a | b |", "| c | d |"]), ("paragraph", 3, ["efter"])
    ]  # fmt: skip
    assert _kinds("- punkt\n| a |\n") == [("item", 0, ["- punkt"]), ("table", 1, ["| a |"])]


def test_headings_at_column_0_for_the_contract_reader() -> None:
    assert _kinds("#Kontrakt\n") == [("paragraph", 0, ["#Kontrakt"])]
    assert _kinds("#Kontrakt\n", column0=True) == [("heading", 0, ["#Kontrakt"])]
    assert blocks("#Kontrakt\n", column0=True)[0].title == "Kontrakt"
    assert _kinds("Tekst\n ## ikke en overskrift\n", column0=True) == [
        ("paragraph", 0, ["Tekst", " ## ikke en overskrift"])
    ]


def test_what_is_not_structure_stays_text() -> None:
    text = "> citat\n---\n    kode\n<div>\nTitel\n===\n"
    assert _kinds(text) == [("paragraph", 0, text.rstrip("\n").split("\n"))]
    assert _kinds("```\n# kommentar\n```\n") == [
        ("paragraph", 0, ["```"]), ("heading", 1, ["# kommentar"]), ("paragraph", 2, ["```"])
    ]  # fmt: skip
    assert _kinds("```\n# kommentar\n```\n", fences=True) == []


def test_lines_are_the_sources_lines() -> None:
    # a lone "\r" breaks no line; a line of no-break spaces is blank
    assert _kinds("a\rb\n\u00a0\nc\n") == [("paragraph", 0, ["a\rb"]), ("paragraph", 2, ["c"])]
