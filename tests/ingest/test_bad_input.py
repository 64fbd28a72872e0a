"""One table of bad input over every registered parser: each stops with a ParseError that names the file (and the
line where there is one), never with another exception or with units read from garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.parsers import get_parser, parser_names
from ingest.units import ParseError

# parsers of text formats: they read the file through ingest/parsers/_text.py (binary formats read bytes only)
TEXT_PARSERS = [
    "article_json", "article_markdown", "contract_markdown", "erst_package", "eurlex_html", "html", "markdown",
    "mcc_pdf_text", "paragraph_markdown", "retsinformation_json",
]  # fmt: skip
BAD_FILES = {
    "missing": None,
    "empty": b"",
    "only whitespace": b" \n\t\n",
}
BAD_TEXT = {
    "not UTF-8": "Artikel 1\n".encode() + b"\xff\xfe not text \xc3\x28\n",
    "NUL bytes": b"# Kontrakt\n\n1 Genstand\x00\x00\x01 binary\n",
}


def _parse(name: str, path: Path) -> None:
    list(get_parser(name)([path], {}))


def test_the_table_covers_every_parser() -> None:
    assert set(TEXT_PARSERS) <= set(parser_names())


@pytest.mark.parametrize("case", list(BAD_FILES))
@pytest.mark.parametrize("name", parser_names())
def test_every_parser_refuses_a_missing_or_empty_file(name: str, case: str, tmp_path: Path) -> None:
    path = tmp_path / "source.txt"
    content = BAD_FILES[case]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ParseError) as caught:
        _parse(name, path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("case", "line"), [("not UTF-8", 2), ("NUL bytes", 3)])
@pytest.mark.parametrize("name", TEXT_PARSERS)
def test_every_text_parser_refuses_what_is_not_text(name: str, case: str, line: int, tmp_path: Path) -> None:
    path = tmp_path / "source.txt"
    path.write_bytes(BAD_TEXT[case])
    with pytest.raises(ParseError) as caught:
        _parse(name, path)
    assert caught.value.line == line and f"{path}:{line}:" in str(caught.value)
    assert ("UTF-8" if case == "not UTF-8" else "NUL") in str(caught.value)
