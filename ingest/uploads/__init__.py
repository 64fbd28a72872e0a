"""An organisation's own documents, taken in beside the corpus and taken out again.

    checks.py    what an upload must pass before anything is kept (metadata, name, type, the format's traps)
    passages.py  from a checked file to its passages (the parser registered for its format, then the splitter)
    registry.py  the uploaded documents on disk: records, files, staging
    service.py   `UploadService`: accept, ingest, replace, delete, resume, each write attempt audited
    errors.py    `UploadError`: a code and the field at fault (their HTTP statuses are in service/errors.py)
"""
