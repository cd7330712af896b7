"""Saved indexes: building/updating them from the store and checking their consistency (doctor)."""
