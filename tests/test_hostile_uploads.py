"""Hostile uploads against the service's app in process (`make_app_client`): each gets a clear 4xx in the one error
shape, nothing is written, and the service stays up. The hostile files are built here, in memory or in tmp (bombs included): none is committed.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kb.knowledge_base import KnowledgeBase
from service.auth import settings_entry
from tests.conftest import copy_data_dir, make_app_client

pytestmark = pytest.mark.slow

WRITER_KEY = "kbk_test-writer-key-0123456789abcdefghijklmnop"
READER_KEY = "kbk_test-reader-key-0123456789abcdefghijklmnop"
API_KEYS = ",".join([settings_entry(WRITER_KEY, "write", "test-writer"), settings_entry(READER_KEY, "read", "test-reader")])
MAX_BYTES = 4 * 1024 * 1024
MAX_UNCOMPRESSED = 64 * 1024 * 1024
BOMB_BYTES = 2 * 1024**3  # what each bomb unpacks to: 2 GiB of zeros, about 2 MB packed


# --- files, built at test time ---------------------------------------------------------------


def make_pdf(pages: list[str], streams: list[tuple[bytes, str]] | None = None) -> bytes:
    """A real PDF: one page per text (Helvetica), objects and xref written out; `streams` replaces page contents."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        if streams is not None:
            data, extra = streams[i]
        else:
            lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.split("\n")]
            data, extra = ("BT /F1 11 Tf 14 TL 72 740 Td " + " ".join(f"({line}) Tj T*" for line in lines) + " ET").encode("latin-1"), ""
        objects.append(f"<< /Length {len(data)}{extra} >>\nstream\n".encode() + data + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write(b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets))
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


GOOD_PDF_PAGES = [
    "Region Testby: guidance on buying clinical AI\nA buyer checks the supplier's CE marking before the contract.",
    "Data protection\nThe supplier signs a data processing agreement before any patient data is shared.",
]


def encrypted_pdf() -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(GOOD_PDF_PAGES))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _zeros_deflate(size: int, raw: bool) -> tuple[bytes, int]:
    """`size` zero bytes deflated (zlib or raw) and their CRC-32: one 16 MiB block compressed once, repeated
    (each block ends with a full flush, so identical blocks are a valid stream)."""
    block_size = 16 * 1024 * 1024
    zeros = bytes(block_size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = size // block_size
    body = block * count + compressor.flush()
    crc = adler = 0
    adler = 1
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
        adler = zlib.adler32(zeros, adler)
    if raw:
        return body, crc
    return b"\x78\xda" + body + struct.pack(">I", adler), crc


def pdf_bomb() -> bytes:
    data, _ = _zeros_deflate(BOMB_BYTES, raw=False)
    return make_pdf(["x"], [(data, " /Filter /FlateDecode")])


def _zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip archive from (name, raw deflate data, crc, unpacked size), written field by field."""
    out = io.BytesIO()
    central = []
    for name, data, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0) + encoded + data)
        central.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0, 0, 0, 0, 0, offset)
            + encoded
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), start, 0))
    return out.getvalue()


def _deflated(data: bytes) -> tuple[bytes, int, int]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


def docx_bomb() -> bytes:
    """A Word package whose document.xml unpacks to 2 GiB."""
    data, crc = _zeros_deflate(BOMB_BYTES, raw=True)
    types = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
    return _zip([("[Content_Types].xml", *_deflated(types)), ("word/document.xml", data, crc, BOMB_BYTES)])


def a_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Formål", level=1)
    document.add_paragraph("Retningslinjen gælder indkøb af AI-løsninger i Region Testby.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


MARKDOWN = "# Retningslinje\n\nRegion Testby køber kun AI-løsninger med CE-mærkning.\n".encode()
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ACT [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ACT><ENACTING.TERMS><ARTICLE IDENTIFIER="001"><TI.ART>Article 1</TI.ART><PARAG><ALINEA>&xxe;</ALINEA></PARAG></ARTICLE></ENACTING.TERMS></ACT>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<ACT><ENACTING.TERMS><ARTICLE IDENTIFIER="001"><TI.ART>Article 1</TI.ART><PARAG><ALINEA>&lol9;</ALINEA></PARAG></ARTICLE></ENACTING.TERMS></ACT>"""
HTML_SCRIPT = b"<!DOCTYPE html><html><head><title>x</title></head><body><h1>Guide</h1><p>Text.</p><script>fetch('/api/documents',{method:'DELETE'})</script></body></html>"
HTML_ONLOAD = b'<!DOCTYPE html><html><body onload="alert(1)"><h1>Guide</h1><p>Text.</p></body></html>'
HTML_JS_LINK = b'<!DOCTYPE html><html><body><h1>Guide</h1><p><a href="javascript:alert(1)">x</a> Text.</p></body></html>'


def _big_markdown() -> bytes:
    line = "Region Testby køber kun AI-løsninger med CE-mærkning og en databehandleraftale.\n"
    return b"# Stor retningslinje\n\n" + (line * (MAX_BYTES // len(line) + 10)).encode()


# (id, filename, content builder, extra form fields, content type, expected status, expected code)
CASES: list[tuple[str, str, Any, dict[str, str], str | None, int, str]] = [
    # refused while it streams in (the body limit of /api/documents follows KB_UPLOAD_MAX_BYTES), or by the route
    ("over-size-limit", "stor.md", _big_markdown, {}, None, 413, "body_too_large|file_too_large"),
    ("pdf-named-docx", "kontrakt.docx", lambda: make_pdf(GOOD_PDF_PAGES), {}, None, 415, "type_mismatch"),
    ("docx-named-pdf", "kontrakt.pdf", a_docx, {}, None, 415, "type_mismatch"),
    ("pdf-named-markdown", "noter.md", lambda: make_pdf(GOOD_PDF_PAGES), {}, None, 415, "type_mismatch"),
    ("html-sent-as-pdf", "side.html", lambda: b"<html><body><p>x</p></body></html>", {}, "application/pdf", 415, "type_mismatch"),
    ("unsupported-type", "program.exe", lambda: b"MZ\x90\x00\x03", {}, None, 415, "unsupported_type"),
    ("corrupt-pdf", "korrupt.pdf", lambda: b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", {}, None, 422, "unreadable_file"),
    ("truncated-pdf", "afkortet.pdf", lambda: make_pdf(GOOD_PDF_PAGES)[:-300], {}, None, 422, "unreadable_file"),
    ("encrypted-pdf", "krypteret.pdf", encrypted_pdf, {}, None, 422, "encrypted_file"),
    ("pdf-bomb", "bombe.pdf", pdf_bomb, {}, None, 422, "decompression_bomb"),
    ("docx-bomb", "bombe.docx", docx_bomb, {}, None, 422, "decompression_bomb"),
    ("corrupt-docx", "korrupt.docx", lambda: b"PK\x03\x04" + bytes(2000), {}, None, 422, "unreadable_file"),
    ("xml-external-entity", "act.xml", lambda: XXE, {}, None, 422, "xml_entities"),
    ("xml-entity-expansion", "lol.xml", lambda: LAUGHS, {}, None, 422, "xml_entities"),
    ("html-script", "guide.html", lambda: HTML_SCRIPT, {}, None, 422, "active_content"),
    ("html-onload", "guide.html", lambda: HTML_ONLOAD, {}, None, 422, "active_content"),
    ("html-javascript-link", "guide.html", lambda: HTML_JS_LINK, {}, None, 422, "active_content"),
    ("not-utf8", "latin1.md", lambda: "# Æblegrød\n\nRegion Sjælland på dansk.\n".encode("latin-1"), {}, None, 422, "not_utf8"),
    ("empty-file", "tom.md", lambda: b"", {}, None, 422, "empty_file"),
    ("path-traversal", "../../etc/cron.d/evil.md", lambda: MARKDOWN, {}, None, 422, "invalid_filename"),
    ("windows-traversal", "..\\..\\evil.md", lambda: MARKDOWN, {}, None, 422, "invalid_filename"),
    ("absolute-path", "/tmp/evil.md", lambda: MARKDOWN, {}, None, 422, "invalid_filename"),
    ("corpus-doc-id", "gdpr.md", lambda: MARKDOWN, {"doc_id": "gdpr"}, None, 409, "doc_id_taken"),
    ("bad-doc-id", "x.md", lambda: MARKDOWN, {"doc_id": "../GDPR"}, None, 422, "invalid_request"),
    ("unknown-kind", "x.md", lambda: MARKDOWN, {"kind": "poem"}, None, 422, "invalid_request"),
]


# --- the app --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(small_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session knowledge base: a bug here must not write into the shared one."""
    return copy_data_dir(small_kb.settings.data_dir, tmp_path_factory.mktemp("hostile") / "data")


@pytest.fixture(scope="module")
def client(small_kb: KnowledgeBase, data_dir: Path) -> Iterator[httpx.Client]:
    kb = KnowledgeBase(small_kb.settings.model_copy(update={"data_dir": data_dir}))
    with make_app_client(
        kb,
        api_keys=API_KEYS,
        audit_log=data_dir.parent / "audit.jsonl",
        upload_max_bytes=MAX_BYTES,
        upload_max_uncompressed_bytes=MAX_UNCOMPRESSED,
    ) as c:
        yield c


def upload(
    client: httpx.Client, filename: str, content: bytes, key: str | None = WRITER_KEY, content_type: str | None = None, **fields: Any
) -> httpx.Response:
    form = {"doc_id": "region-testby-guide", "title": "Region Testby: AI-indkøb", "kind": "guidance", "language": "da"}
    form.update(fields)
    file = (filename, content, content_type) if content_type else (filename, content)
    headers = {"X-API-Key": key} if key else {}
    return client.post("/api/documents", data=form, files={"file": file}, headers=headers)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape, with this status and code; no traceback."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"status", "code", "message"} <= set(error) <= {"status", "code", "message", "field", "valid"}
    assert error["status"] == status and error["code"] in code.split("|"), error
    assert "Traceback" not in response.text
    return error


def written(data_dir: Path) -> list[str]:
    """What uploads left under the data dir, apart from the lock file and the empty staging folder."""
    root = data_dir / "uploads"
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.name != ".write.lock" and not (p.is_dir() and p.name == ".incoming")
    )


def _catalog(data_dir: Path) -> str:
    return (data_dir / "catalog.json").read_text()


@pytest.mark.parametrize(
    ("filename", "build", "fields", "content_type", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_upload_is_refused_and_nothing_is_written(
    client: httpx.Client,
    data_dir: Path,
    filename: str,
    build: Any,
    fields: dict[str, str],
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    catalog_before = _catalog(data_dir)
    content = build()
    response = upload(client, filename, content, content_type=content_type, **fields)
    error = error_of(response, status, code)
    assert error.get("field") in ("file", "doc_id", "kind", None), error
    assert "root:" not in response.text  # no external entity was ever read
    assert written(data_dir) == [], "a refused upload must leave nothing behind"
    assert _catalog(data_dir) == catalog_before
    assert client.get("/healthz").status_code == 200, "the service stays up"


def test_nothing_hostile_reached_the_filesystem_outside(data_dir: Path) -> None:
    for name in ("evil.md",):
        assert not list(data_dir.parent.rglob(name))
    assert not Path("/etc/cron.d/evil.md").exists()


def test_refusals_are_audited_without_content(client: httpx.Client, data_dir: Path) -> None:
    upload(client, "latin1.md", "Patient Jens Hansen, cpr 010203-1234".encode("latin-1") + b"\xff")
    lines = (data_dir.parent / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    rejected = [e for e in entries if e["outcome"] == "rejected"]
    assert rejected and all(e["who"] == "test-writer" and e["action"] == "upload" for e in rejected)
    assert {e["code"] for e in rejected} >= {"not_utf8", "type_mismatch", "decompression_bomb", "xml_entities"}
    text = "\n".join(lines)
    assert "Jens Hansen" not in text and "010203" not in text and "latin1.md" not in text, "no file names or content"
    for entry in entries:
        assert set(entry) == {"time", "who", "action", "doc_id", "sha256", "bytes", "outcome", "status", "code"}
        assert entry["time"].endswith("Z")


def test_a_clean_upload_passes_the_same_checks(client: httpx.Client, data_dir: Path) -> None:
    """The checks refuse what they should, not everything: a sound PDF of the same shape is accepted."""
    response = upload(client, "retningslinje.pdf", make_pdf(GOOD_PDF_PAGES), doc_id="clean-pdf", language="en")
    assert response.status_code == 202, response.text
    assert response.json()["format"] == "pdf"
    removed = client.delete("/api/documents/clean-pdf", headers={"X-API-Key": WRITER_KEY})
    assert removed.status_code == 200, removed.text
    assert written(data_dir) == []
