"""Sources -> documents -> passages: parsers, the structure-aware splitter, the manifest, incremental ingest."""
