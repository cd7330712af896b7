"""Alembic migrations of the store, shipped inside the package and run programmatically by :mod:`matcher.store`.

No ``alembic.ini`` is needed: :func:`matcher.store.alembic_config` builds the configuration in code with
``script_location = "matcher:migrations"``. To add a revision (e.g. the service's leads / feedback / api_keys
tables), drop a file into ``versions/`` with ``down_revision`` set to the current head (``0001``, ...). Stores
upgrade to head on open.

From a shell::

    python -c "from matcher.store import upgrade; upgrade('sqlite:///path/chainmatch.db')"
"""
