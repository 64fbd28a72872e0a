"""The knowledge base: passages with legal addresses, their index, and retrieval."""
