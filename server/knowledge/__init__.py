"""The knowledge base: documents split into chunks, embedded, stored and searched.

- `store`: the interface of a vector store (`VectorStore`) and its records;
- `sqlite_store`: the embedded store (sqlite-vec in a SQLite file), the default;
- `pg_store`: PostgreSQL with pgvector, when `DATABASE_URL` is set;
- `embeddings`: the offline lexical embedding and the configured providers' ones;
- `service`: `Knowledge`, which splits, embeds, stores and searches (the tool's backend);
- `loaders` and `cli`: reading files and `make ingest`.
"""
