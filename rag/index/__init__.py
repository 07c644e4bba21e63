"""The article index: documents, chunks, the Chroma store, BM25 keywords, embeddings, the lexicon."""
