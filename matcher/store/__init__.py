"""Persistence: the enterprise/region store, leads and feedback, file importers and embedded corpora."""
