"""Every reason an upload is refused has its HTTP status in the one table (service/errors.py), and the audit log
records the status the API answered with."""

from __future__ import annotations

import json

import pytest

from ingest.uploads.errors import CODES, UploadError
from service.errors import UPLOAD_STATUS, translate, upload_status


def test_every_upload_code_has_a_status() -> None:
    assert set(UPLOAD_STATUS) == set(CODES)


def test_an_upload_error_becomes_the_api_error() -> None:
    response = translate(UploadError("doc_id_taken", "doc_id 'gdpr' is a corpus document; choose another id", "doc_id"))
    assert response.status_code == 409
    assert json.loads(response.body)["error"] == {
        "status": 409, "code": "doc_id_taken", "message": "doc_id 'gdpr' is a corpus document; choose another id", "field": "doc_id"
    }  # fmt: skip
    assert json.loads(translate(UploadError("file_too_large", "too large")).body)["error"]["field"] == "file"


def test_an_unknown_code_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown upload error code 'no_such_code'"):
        UploadError("no_such_code", "x")


def test_the_audited_status_of_each_outcome() -> None:
    assert upload_status("rejected", "type_mismatch") == 415
    assert upload_status("accepted", None) == 202 and upload_status("deleted", None) == 200
    assert upload_status("ready", None) is None and upload_status("failed", "ingest_failed") is None
