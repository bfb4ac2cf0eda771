"""Loading, chunking and embedding documents into the vector store."""
