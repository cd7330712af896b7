"""Ranking: queries, profile passages, scoring, the recommender, reranker, reverse fit and the engine."""
