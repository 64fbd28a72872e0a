"""Why an upload (or the removal of one) was refused: a stable code and the field at fault, nothing about HTTP.

The faces decide what a code means to their caller: the API's status for each code is one table in
service/errors.py, the CLI prints the message. `CODES` lists every code the uploads raise, so that table can be
checked to be complete.
"""

from __future__ import annotations

from kb.errors import KBError

CODES = frozenset(
    {
        # the metadata sent with the file
        "invalid_doc_id",
        "doc_id_taken",
        "replace_needed",
        "invalid_kind",
        "invalid_language",
        "invalid_jurisdiction",
        "invalid_scenario",
        "invalid_title",
        # the file
        "invalid_filename",
        "file_too_large",
        "unsupported_type",
        "type_mismatch",
        "empty_file",
        "not_utf8",
        "unreadable_file",
        "encrypted_file",
        "too_many_pages",
        "decompression_bomb",
        "xml_entities",
        "active_content",
        # removing one
        "unknown_document",
        "corpus_document",
    }
)


class UploadError(KBError):
    """An upload or removal refused before anything was written: a stable code (one of CODES), the field at fault,
    the reason."""

    def __init__(self, code: str, message: str, field: str | None = "file") -> None:
        if code not in CODES:
            raise ValueError(f"unknown upload error code {code!r}; add it to CODES and to service/errors.py")
        self.code = code
        self.field = field
        super().__init__(message)
