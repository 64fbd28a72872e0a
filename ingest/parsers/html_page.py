"""An HTML page: an act saved from EUR-Lex keeps its articles and annexes; any other page is read as Markdown.

Registered as `html`, the parser an uploaded .html file is read with (ingest/uploads/passages.py). The page is
parsed with lxml with the network off and comments and processing instructions dropped; its headings,
paragraphs, list items and table rows become Markdown in document order, which the `markdown` parser reads.
`parse_html` is also what the upload's safety check walks (ingest/uploads/checks.py), so the check sees the same
tree the parser reads. Option `front_heading` as for `markdown`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import get_parser, register
from ingest.parsers._text import read_normalised
from ingest.parsers.markdown_outline import units_from_text
from ingest.units import ParseError, Unit


def parse_html(text: str) -> Any:
    """The page's lxml tree; ParseError when lxml cannot make one."""
    import lxml.html
    from lxml import etree

    parser = lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, huge_tree=False)
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)
    try:
        return lxml.html.document_fromstring(body, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(Path("upload.html"), f"not parseable as HTML: {exc}") from None


def html_markdown(text: str) -> str:
    """An HTML page as Markdown: headings, paragraphs, list items and table rows, in document order."""
    root = parse_html(text)
    body = root.find("body")
    lines: list[str] = []

    def words(el: Any) -> str:
        return re.sub(r"\s+", " ", el.text_content()).strip()

    def walk(el: Any) -> None:
        for child in el:
            if not isinstance(child.tag, str):
                continue
            tag = child.tag.lower()
            if tag in ("script", "style", "head", "nav", "template"):
                continue
            if re.fullmatch(r"h[1-6]", tag):
                lines.extend([f"{'#' * int(tag[1])} {words(child)}", ""])
            elif tag in ("p", "blockquote", "pre", "dd", "dt", "caption", "figcaption", "address"):
                lines.extend([words(child), ""])
            elif tag == "li":
                lines.append(f"- {words(child)}")
            elif tag == "tr":
                cells = [words(c) for c in child if isinstance(c.tag, str) and c.tag.lower() in ("td", "th")]
                lines.append("| " + " | ".join(cells) + " |")
            else:
                if child.text and child.text.strip() and tag in ("div", "section", "article", "main", "body"):
                    lines.extend([re.sub(r"\s+", " ", child.text).strip(), ""])
                walk(child)
                if tag in ("ul", "ol", "table"):
                    lines.append("")

    walk(body if body is not None else root)
    return "\n".join(lines)


@register("html")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units of one HTML page: `art-<n>`/`annex-<n>` for an act from EUR-Lex, else `section-<n>` by heading."""
    for path in files:
        path = Path(path)
        text = read_normalised(path)
        try:  # an act saved from EUR-Lex keeps its articles and annexes
            units = list(get_parser("eurlex_html")([path], {}))
        except ParseError:
            units = units_from_text(html_markdown(text), path, options.get("front_heading", "Preamble"))
        yield from units
