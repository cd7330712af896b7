"""The database under the store: SQLAlchemy engines (SQLite WAL pragmas, PostgreSQL) and Alembic migrations to
head (revisions in :mod:`matcher.migrations`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Engine,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from matcher.gc_pause import paused_gc
from matcher.store.identity import _json_deserializer, _json_serializer

__all__ = [
    "STATEMENT_TIMEOUT_MS",
    "alembic_config",
    "analyze",
    "bulk_write_cache",
    "is_statement_timeout",
    "make_engine",
    "paused_gc",
    "upgrade",
]

logger = logging.getLogger(__name__)

_JSON: dict[str, Any] = {"json_serializer": _json_serializer, "json_deserializer": _json_deserializer}
_WRITE_TXN: ContextVar[bool] = ContextVar("chainmatch_store_write_txn", default=False)


_CHUNK = 500  # ids per IN (...) look-up


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def bulk_write_cache(session: Any, mib: int = 256) -> Iterator[None]:
    """On SQLite, a page cache of up to ``mib`` MiB for this connection while a bulk write runs (the default 2 MiB
    makes index inserts of a million rows re-read pages again and again), restored afterwards; a no-op elsewhere."""
    from sqlalchemy import text

    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    old = session.execute(text("PRAGMA cache_size")).scalar()
    session.execute(text(f"PRAGMA cache_size=-{int(mib) * 1024}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size={int(old)}"))


def analyze(session: Any, tables: Sequence[str]) -> None:
    """Refresh PostgreSQL's planner statistics of ``tables`` (inside the current transaction, which sees its own
    rows). After a bulk load the statistics still describe the empty table, and the planner then answers the
    importer's ``IN (...)`` look-ups with sequential scans; SQLite needs no statistics to use its indexes."""
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        session.execute(text(f'ANALYZE "{table}"'))


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


STATEMENT_TIMEOUT_MS = 30_000
"""Any statement running longer than this is cancelled (no request may run past 30 s): PostgreSQL's
``statement_timeout``; on SQLite a progress handler interrupts it (``sqlite3.OperationalError: interrupted``)."""
_PROGRESS_STEPS = 20_000  # SQLite VM instructions between deadline checks (a few hundred microseconds)


def _sqlite_statement_timeout(dbapi_connection: Any, info: dict[str, Any]) -> None:
    """Interrupt a statement of this connection once it has run :data:`STATEMENT_TIMEOUT_MS`."""
    info["statement_deadline"] = None

    def check() -> int:
        deadline = info["statement_deadline"]
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    dbapi_connection.set_progress_handler(check, _PROGRESS_STEPS)


def is_statement_timeout(exc: BaseException) -> bool:
    """True for a statement cancelled by :data:`STATEMENT_TIMEOUT_MS` (either store)."""
    orig = getattr(exc, "orig", exc)
    if type(orig).__name__ == "QueryCanceled":  # psycopg: canceling statement due to statement timeout
        return True
    return isinstance(exc, OperationalError) and str(orig) == "interrupted"  # SQLite progress handler


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, a 30 s busy timeout and their directory created."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True, **_JSON)

        @event.listens_for(engine, "connect")
        def _statement_timeout(dbapi_connection: Any, _record: Any) -> None:
            # no statement runs past the bound (a runaway search is cancelled by the server, not left running)
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            dbapi_connection.commit()

        return engine
    database = u.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            **_JSON,
        )
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **_JSON
        )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, decide where transactions begin: real BEGIN / SAVEPOINT / transactional DDL
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if database not in ("", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "connect")
    def _sqlite_timeout(dbapi_connection: Any, record: Any) -> None:
        _sqlite_statement_timeout(dbapi_connection, record.info)

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: Any, *_args: Any) -> None:
        conn.info["statement_deadline"] = time.monotonic() + STATEMENT_TIMEOUT_MS / 1000

    # the bound covers fetching the rows too (as PostgreSQL's does); it ends with the transaction, so a commit
    # after a long transaction is never interrupted
    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(conn: Any) -> None:
        conn.info["statement_deadline"] = None

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_connection: Any, record: Any) -> None:
        record.info["statement_deadline"] = None

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # A write transaction takes the write lock up front, waiting up to the busy timeout for other
        # writers. A deferred BEGIN that reads first cannot upgrade once another writer has committed
        # (SQLITE_BUSY_SNAPSHOT: "database is locked" at once) — concurrent API upserts failed with 500s.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _WRITE_TXN.get() else "BEGIN")

    return engine


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration built in code: scripts from the installed ``matcher.migrations`` package."""
    cfg = Config()
    cfg.set_main_option("script_location", "matcher:migrations")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@lru_cache(maxsize=1)
def _script_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current_heads(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def upgrade(target: Engine | str, revision: str = "head") -> None:
    """Run the store's migrations up to ``revision`` (a no-op when the database is already at head).

    Args:
        target: an engine or a database URL.
        revision: alembic revision, default ``head``.
    """
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        if revision == "head" and _current_heads(engine) == _script_heads():
            return
        cfg = alembic_config()
        alembic_logger = logging.getLogger("alembic")
        level = alembic_logger.level
        alembic_logger.setLevel(max(level, logging.WARNING))  # its per-run INFO chatter is noise in the CLI
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
            logger.info("store %s migrated to %s", engine.url.render_as_string(hide_password=True), revision)
        except (OperationalError, ProgrammingError, IntegrityError):
            # another process may have migrated the same database at the same moment
            if revision == "head" and _current_heads(engine) == _script_heads():
                logger.info("store already migrated by a concurrent process")
                return
            raise
        finally:
            alembic_logger.setLevel(level)
    finally:
        if isinstance(target, str):
            engine.dispose()
