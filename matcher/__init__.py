"""The matcher: ChainMatch's domain, persistence and ranking (no web, no CLI, no evaluation).

Layers, each importing only the ones below it:

- `matcher.indexing`: saved vector + lexical indexes built from the store, and the consistency doctor;
- `matcher.ranking`: queries, scoring, the recommender, reranker, reverse fit and the engine;
- `matcher.store`: the relational store, leads and feedback, importers and embedded corpora;
- `matcher.knowledge`: chain catalogue, regions, aiding pairs, geography, gap diagnosis, product->link mapping;
- shared modules at this level: `records` (domain records), `errors`, `settings`, `text` (Chinese text
  normalisation and tokenisation, the one home for it).

Package data stays here: `matcher/data/` (catalogue YAML, regions, demo corpus) and `matcher/migrations/`
(Alembic revisions).
"""
