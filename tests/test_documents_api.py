"""Document management over HTTP, on the service's app in process (`make_app_client`) over a copy of the session's
knowledge base: API keys, upload, status, search, delete, audit log."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kb.knowledge_base import KnowledgeBase
from service.audit import AuditLog
from service.auth import identify, new_key, settings_entry
from kb.settings import ServiceSettings
from tests.conftest import copy_data_dir, make_app_client
from tests.test_hostile_uploads import API_KEYS, READER_KEY, WRITER_KEY, a_docx, error_of, make_pdf, upload

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

GUIDE = """# Region Testby: retningslinje for indkøb af AI

Retningslinjen gælder for alle afdelinger i Region Testby.

## Før indkøbet

Klinikken beskriver behovet, og juraenheden vurderer om kvalitetsstyringsprocessen kræver en markedsdialog.
Blåbærprotokollen skal udfyldes før første møde med en leverandør.

## Kontrakten

Leverandøren underskriver en databehandleraftale, før patientdata deles.
"""


@pytest.fixture(scope="module")
def data_dir(small_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_data_dir(small_kb.settings.data_dir, tmp_path_factory.mktemp("documents-api") / "data")


@pytest.fixture(scope="module")
def audit_path(data_dir: Path) -> Path:
    return data_dir.parent / "audit.jsonl"


@pytest.fixture(scope="module")
def client(small_kb: KnowledgeBase, data_dir: Path, audit_path: Path) -> Iterator[httpx.Client]:
    kb = KnowledgeBase(small_kb.settings.model_copy(update={"data_dir": data_dir}))
    with make_app_client(kb, api_keys=API_KEYS, audit_log=audit_path) as c:
        yield c


def wait_until_settled(client: httpx.Client, doc_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/documents/{doc_id}")
        assert response.status_code == 200, response.text
        status = response.json()
        if status["status"] in ("ready", "failed"):
            return status
        assert time.monotonic() < deadline, f"{doc_id} still {status['status']}"
        time.sleep(0.5)


# --- keys ----------------------------------------------------------------------------------------


def test_keys_are_stored_hashed_and_checked() -> None:
    key = new_key()
    entry = settings_entry(key, "write", "rh-jura")
    assert key not in entry and entry.startswith("sha256:")
    assert identify(key, [entry]).name == "rh-jura"  # type: ignore[union-attr]
    assert identify(key + "x", [entry]) is None and identify("", [entry]) is None
    with pytest.raises(ValueError, match="entry 1 must be sha256"):
        ServiceSettings(api_keys=[key])  # a plain key in the settings is refused


@pytest.mark.parametrize(
    ("key", "status", "code"), [(None, 401, "missing_api_key"), ("kbk_wrong", 401, "invalid_api_key"), (READER_KEY, 403, "read_only_key")]
)
def test_writes_need_a_write_key(client: httpx.Client, data_dir: Path, key: str | None, status: int, code: str) -> None:
    response = upload(client, "guide.md", GUIDE.encode(), key=key, doc_id="no-key-guide")
    error = error_of(response, status, code)
    assert error["field"] == "X-API-Key"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("ApiKey")
    headers = {"X-API-Key": key} if key else {}
    error_of(client.delete("/api/documents/gdpr", headers=headers), status, code)
    assert not (data_dir / "uploads" / "no-key-guide").exists()


def test_the_key_is_checked_before_the_body_is_read(client: httpx.Client) -> None:
    """No key and a body that is not even multipart: 401, not a complaint about the body."""
    response = client.post("/api/documents", content=b"x" * 100_000, headers={"Content-Type": "application/octet-stream"})
    error_of(response, 401, "missing_api_key")


# --- upload, status, search, delete ---------------------------------------------------------------


@pytest.fixture(scope="module")
def uploaded_guide(client: httpx.Client) -> dict[str, Any]:
    response = upload(client, "retningslinje.md", GUIDE.encode(), doc_id="testby-guide", scenarios="behov")
    assert response.status_code == 202, response.text
    assert response.headers["location"] == "/api/documents/testby-guide"
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["origin"] == "upload"
    assert accepted["sha256"] == hashlib.sha256(GUIDE.encode()).hexdigest()
    assert "uploaded_by" not in accepted
    return wait_until_settled(client, "testby-guide")


def test_upload_is_ingested_and_searchable(client: httpx.Client, data_dir: Path, uploaded_guide: dict[str, Any]) -> None:
    status = uploaded_guide
    assert status["status"] == "ready", status
    assert status["passages"] >= 3 and status["format"] == "markdown" and status["scenarios"] == ["behov"]
    hits = client.get("/api/search", params={"q": "Blåbærprotokollen leverandør", "doc": "testby-guide"}).json()
    assert hits and hits[0]["ref"] == "testby-guide:section-1.1", hits[:2]
    anywhere = client.get("/api/search", params={"q": "Blåbærprotokollen skal udfyldes", "k": 3}).json()
    assert anywhere[0]["doc_id"] == "testby-guide", "an upload is searched like any passage"
    documents = {d["doc_id"]: d for d in client.get("/api/documents").json()}
    assert documents["testby-guide"]["origin"] == "upload" and documents["gdpr"]["origin"] == "corpus"
    assert (data_dir / "uploads" / "testby-guide" / "source.markdown").read_bytes() == GUIDE.encode()


def test_a_tagged_upload_joins_its_scenario(client: httpx.Client, uploaded_guide: dict[str, Any]) -> None:
    """Tagged `behov` at upload: the clause finder's behov filter keeps it and a behov answer lists it among the
    provisions that matter; the demo scenario does neither."""
    assert uploaded_guide["status"] == "ready"
    query = "Blåbærprotokollen leverandør"
    behov = client.get("/api/clauses", params={"q": query, "scenario": "behov"}).json()
    assert behov and behov[0]["ref"] == "testby-guide:section-1.1", behov[:2]
    demo = client.get("/api/clauses", params={"q": query, "scenario": "demo"}).json()
    assert all(h["doc_id"] != "testby-guide" for h in demo), demo[:2]

    def scenario_provisions(scenario: str) -> str:
        question = "Hvornår skal Blåbærprotokollen udfyldes?"
        response = client.post("/api/ask", json={"question": question, "scenario": scenario})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert not answer["abstained"] and answer["citations"][0]["doc_id"] == "testby-guide", answer
        return next((line for line in answer["answer"].splitlines() if line.startswith("Bestemmelser, der typisk")), "")

    assert "testby-guide:section-1.1 [1]" in scenario_provisions("behov")
    assert "testby-guide" not in scenario_provisions("demo")


def test_doc_id_taken_twice_is_a_conflict(client: httpx.Client, uploaded_guide: dict[str, Any]) -> None:
    error = error_of(upload(client, "andet.md", b"# Andet\n\nNoget andet.\n", doc_id="testby-guide"), 409, "doc_id_taken")
    assert error["field"] == "doc_id"


def test_status_of_corpus_and_unknown_documents(client: httpx.Client) -> None:
    gdpr = client.get("/api/documents/gdpr").json()
    assert gdpr["origin"] == "corpus" and gdpr["status"] == "ready" and gdpr["passages"] > 0
    error_of(client.get("/api/documents/no-such-doc"), 404, "unknown_document")
    traversal = client.get("/api/documents/..%2F..%2Fetc%2Fpasswd")
    assert traversal.status_code == 404 and "root:" not in traversal.text


def test_corpus_documents_cannot_be_deleted(client: httpx.Client) -> None:
    error_of(client.delete("/api/documents/gdpr", headers={"X-API-Key": WRITER_KEY}), 409, "corpus_document")
    error_of(client.delete("/api/documents/no-such-doc", headers={"X-API-Key": WRITER_KEY}), 404, "unknown_document")
    assert client.get("/api/documents/gdpr").json()["passages"] > 0


@pytest.mark.parametrize(
    ("filename", "content", "language", "query"),
    [
        ("guide.pdf", lambda: make_pdf(["Vejledning", "Sneglehuset beskriver hvordan klinikken tester algoritmen."]), "da", "Sneglehuset algoritmen"),
        ("guide.docx", a_docx, "da", "Retningslinjen gælder indkøb af AI-løsninger i Region Testby"),
        (
            "guide.html",
            lambda: b"<!DOCTYPE html><html><body><h1>Guide</h1><h2>Tests</h2><p>The Kingfisher protocol governs clinical tests.</p></body></html>",
            "en",
            "Kingfisher protocol",
        ),
        ("annex.xml", lambda: (CORPUS / "ai-act/en/formex/L_202401689EN.013301.fmx.xml").read_bytes(), "en", "annex"),
    ],
    ids=["pdf", "docx", "html", "formex"],
)
def test_each_format_is_taken_in_and_removed(client: httpx.Client, data_dir: Path, filename: str, content: Any, language: str, query: str) -> None:
    doc_id = "format-" + filename.rsplit(".", 1)[1]
    response = upload(client, filename, content(), doc_id=doc_id, language=language)
    assert response.status_code == 202, response.text
    status = wait_until_settled(client, doc_id)
    assert status["status"] == "ready" and status["passages"] >= 1, status
    hits = client.get("/api/search", params={"q": query, "doc": doc_id}).json()
    assert hits and all(h["ref"].startswith(f"{doc_id}:") for h in hits)
    removed = client.delete(f"/api/documents/{doc_id}", headers={"X-API-Key": WRITER_KEY})
    assert removed.status_code == 200 and removed.json()["passages_removed"] == status["passages"], removed.text
    assert not (data_dir / "uploads" / doc_id).exists()


def test_delete_removes_every_passage(client: httpx.Client, data_dir: Path, uploaded_guide: dict[str, Any]) -> None:
    response = client.delete("/api/documents/testby-guide", headers={"X-API-Key": WRITER_KEY})
    assert response.status_code == 200, response.text
    assert response.json() == {"doc_id": "testby-guide", "deleted": True, "passages_removed": uploaded_guide["passages"]}
    error_of(client.get("/api/documents/testby-guide"), 404, "unknown_document")
    error_of(client.get("/api/search", params={"q": "Blåbærprotokollen", "doc": "testby-guide"}), 422, "invalid_doc")
    hits = client.get("/api/search", params={"q": "Blåbærprotokollen skal udfyldes", "k": 20}).json()
    assert all(h["doc_id"] != "testby-guide" for h in hits)
    assert not (data_dir / "uploads" / "testby-guide").exists()
    assert "testby-guide" not in {d["doc_id"] for d in client.get("/api/documents").json()}


def test_every_write_is_audited(client: httpx.Client, audit_path: Path, uploaded_guide: dict[str, Any]) -> None:
    entries = AuditLog(audit_path).entries()
    guide = [e for e in entries if e["doc_id"] == "testby-guide"]
    outcomes = [(e["who"], e["action"], e["outcome"]) for e in guide]
    assert ("test-writer", "upload", "accepted") in outcomes
    assert ("test-writer", "ingest", "ready") in outcomes
    accepted = next(e for e in guide if e["outcome"] == "accepted")
    assert accepted["sha256"] == hashlib.sha256(GUIDE.encode()).hexdigest() and accepted["bytes"] == len(GUIDE.encode())
    denied = [e for e in entries if e["outcome"] == "denied"]
    assert {(e["who"], e["status"]) for e in denied} >= {(None, 401), ("test-reader", 403)}
    assert READER_KEY not in audit_path.read_text() and WRITER_KEY not in audit_path.read_text()
    assert "Blåbærprotokollen" not in audit_path.read_text(), "no content and no question text in the audit log"


def test_openapi_describes_the_document_endpoints(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/documents"]["post"]
    assert {"202", "401", "403", "409", "413", "415", "422"} <= set(post["responses"])
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert post["security"] and any(s.get("name") == "X-API-Key" for s in schema["components"]["securitySchemes"].values())
    one = schema["paths"]["/api/documents/{doc_id}"]
    assert {"get", "delete"} <= set(one) and {"401", "403", "404", "409"} <= set(one["delete"]["responses"])
