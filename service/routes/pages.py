"""The web pages: the demo page with the chat widget, the widget's script, and the clause finder.

The pages are static files under service/static/; every script and style they load comes from the service
itself (no CDN, fonts or trackers), and they hold no inline script or style, so a strict Content-Security-Policy
fits them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# /widget.js is these, in this order: the shared helpers first (static/common.js), then the widget
WIDGET_PARTS = ("common.js", "widget.js")


def _page(name: str, media_type: str = "text/html; charset=utf-8") -> FileResponse:
    # no-cache: the browser revalidates (ETag), so a new release shows at once
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/")
def demo_page() -> FileResponse:
    """A hospital-style page that embeds the chat widget as any page would, with links to the clause finder."""
    return _page("index.html")


@router.get("/widget.js")
def widget_script(request: Request) -> Response:
    """The embeddable chat widget: `<script src=".../widget.js" data-kb-url="..." data-lang="da">`.

    Host pages embed it with that one tag, so the helpers it shares with the pages (static/common.js) are served in
    front of it in the same script rather than as a second tag every embedder would have to add. Read per request,
    as the files of the other pages are, so a new release shows at once; the ETag lets the browser revalidate."""
    body = b"\n".join((STATIC_DIR / name).read_bytes() for name in WIDGET_PARTS)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)  # the browser's copy is current: nothing to send again
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/clauses")
def clause_finder() -> FileResponse:
    """The clause finder: search with filters."""
    return _page("clauses.html")


@router.get("/clauses/{ref:path}")
def clause_page(ref: str) -> FileResponse:
    """A clause at a stable address (`/clauses/ai-act:art-26`): the same page, which reads the reference from its URL."""
    return _page("clauses.html")
