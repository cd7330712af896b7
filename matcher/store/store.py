"""The enterprise and region store: SQLAlchemy 2.x over SQLite (default, WAL) or PostgreSQL.

Rows with ``tenant IS NULL`` are the shared corpus (A-share companies, demo enterprises, operator imports); it is
read-only to tenants. A tenant sees the shared corpus plus its own private rows; other tenants' rows are invisible.

Identity and deduplication (:meth:`Store.upsert_enterprises`), within one scope (the shared corpus or one tenant):

1. the same 统一社会信用代码;
2. else the same normalised name and province (only when at most one side has a credit code, so two firms with
   different codes are never merged);
3. else the same id.

A matched row keeps its id and is replaced by the new profile; rows whose content did not change are not written.
Enterprise ids are globally unique: a tenant's rows are stored as ``{tenant}:{id}``. A tenant's private row hides
the shared row of the same firm (same credit code, or same normalised name + province) from that tenant's reads,
so a firm never appears twice in one tenant's results.

Every changed row gets a new ``content_hash`` and loses its ``embedded_hash``; :meth:`Store.pending_embedding`
lists the rows whose content changed since they were last embedded with a given model.

Schema changes are Alembic revisions shipped in :mod:`matcher.migrations`; opening a store upgrades it to head.

Example:
    >>> store = Store("sqlite:///tmp/chainmatch.db")          # doctest: +SKIP
    >>> summary = store.upsert_enterprises(enterprises)       # doctest: +SKIP
    >>> store.find_enterprises("特变电工")[0].name              # doctest: +SKIP
    '特变电工股份有限公司'
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
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
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from matcher.errors import ChainMatchError, InvalidRequestError, UnknownEnterpriseError, UnknownRegionError
from matcher.records import Enterprise, LinkMatch, Region
from matcher.settings import Settings, get_settings
from matcher.store.credit_code import validate_credit_code
from matcher.store.db_models import EnterpriseChangeRow, EnterpriseRow, RegionRow
from matcher.text import clean_text, normalize_company_name, normalize_text

__all__ = [
    "ALL_TENANTS",
    "SharedCorpusReadOnlyError",
    "Store",
    "StoreConflictError",
    "UpsertSummary",
    "alembic_config",
    "content_hash",
    "branch_of",
    "same_firm",
    "scoped_id",
    "upgrade",
]

logger = logging.getLogger(__name__)

ALL_TENANTS = "*"
"""Pass as ``tenant`` to :meth:`Store.iter_enterprises` / :meth:`Store.count_enterprises` to read every row of
every tenant (index building); never accepted by writes."""

_WRITE_TXN: ContextVar[bool] = ContextVar("chainmatch_store_write_txn", default=False)
"""Whether the transaction being begun in this context may write (SQLite: ``BEGIN IMMEDIATE``)."""
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHUNK = 500  # ids per IN (...) look-up


class SharedCorpusReadOnlyError(ChainMatchError, PermissionError):
    """A tenant tried to change or delete a row of the shared corpus."""

    code = "shared_read_only"

    def __init__(self, kind: str, key: str, tenant: str) -> None:
        self.kind, self.key, self.tenant = kind, key, tenant
        super().__init__(
            f"{kind} '{key}' belongs to the shared corpus, which is read-only to tenant '{tenant}' "
            "(expected one of the tenant's own rows)"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class StoreConflictError(ChainMatchError):
    """A write would violate a uniqueness rule (e.g. one credit code on two rows of the same tenant)."""

    code = "store_conflict"


@dataclass(frozen=True)
class EnterpriseChange:
    """One entry of the enterprise change log (see :meth:`Store.changes_since`)."""

    seq: int
    enterprise_id: str
    tenant: str | None
    op: str  # "upsert" | "delete"
    origin: str | None


@dataclass
class UpsertSummary:
    """What :meth:`Store.upsert_enterprises` did.

    Counts are per stored row: input items that resolve to the same row (same credit code, name + province or
    id) are merged, the later one winning. ``ids`` gives the stored id of every input item, in input order.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


# --- helpers ------------------------------------------------------------------------------------------------------


def check_tenant(tenant: str | None, *, allow_all: bool = False) -> str | None:
    """Validate a tenant name (letters, digits, ``_.-``, ≤ 64 chars); ``None`` is the shared corpus."""
    if tenant is None or (allow_all and tenant == ALL_TENANTS):
        return tenant
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise InvalidRequestError(
            "tenant", tenant, "expected 1-64 characters of letters, digits, '_', '.', '-' (no ':')"
        )
    return tenant


def scoped_id(enterprise_id: str, tenant: str | None) -> str:
    """The stored (globally unique) id of an enterprise: ``id`` for the shared corpus, ``{tenant}:{id}`` else."""
    if tenant is None or enterprise_id.startswith(f"{tenant}:"):
        return enterprise_id
    return f"{tenant}:{enterprise_id}"


class _RawJSON(str):
    """Profile JSON serialised once (for its hash) and handed to the JSON column as is."""


def _json_serializer(value: Any) -> str:
    if isinstance(value, _RawJSON):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _canonical_json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(profile: dict[str, Any]) -> str:
    """SHA-256 of a profile's canonical JSON without ``updated_at`` (what change detection compares)."""
    body = {k: v for k, v in profile.items() if k != "updated_at"}
    return hashlib.sha256(_canonical_json(body).encode("utf-8")).hexdigest()


def _profile_json(e: Enterprise, updated_at: datetime) -> tuple[_RawJSON, str]:
    """(stored JSON with ``updated_at``, content hash) of a profile, serialising it once."""
    body = _canonical_json(e.model_dump(mode="json", exclude={"updated_at"}))
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return _RawJSON(f'{{"updated_at":{json.dumps(updated_at.isoformat())},{body[1:]}'), digest


_BRANCH = re.compile(r"^.*?公司(.+分公司)$")


def branch_of(name: str) -> str:
    """The branch part of ``X公司Y分公司`` (``Y分公司``), else ``""``: branches are separate firms for dedupe even
    though :func:`matcher.text.normalize_company_name` maps them onto their parent for matching."""
    m = _BRANCH.match(normalize_text(name))
    return m.group(1) if m else ""


def _compatible(
    code_a: str | None,
    stock_a: str | None,
    branch_a: str,
    code_b: str | None,
    stock_b: str | None,
    branch_b: str,
) -> bool:
    """Same name + province may be the same firm unless a credit code, stock code or branch says otherwise."""
    return (
        branch_a == branch_b
        and not (code_a and code_b and code_a != code_b)
        and not (stock_a and stock_b and stock_a != stock_b)
    )


def same_firm(a: Enterprise, b: Enterprise) -> bool:
    """The store's identity rule for two profiles: same credit code, else same normalised name and province with
    no conflicting credit code, stock code or branch."""
    if a.credit_code and b.credit_code:
        return a.credit_code == b.credit_code
    na = a.normalized_name or normalize_company_name(a.name)
    nb = b.normalized_name or normalize_company_name(b.name)
    return (
        na == nb
        and a.province == b.province
        and _compatible(
            a.credit_code, a.stock_code, branch_of(a.name), b.credit_code, b.stock_code, branch_of(b.name)
        )
    )


def _aliases_key(e: Enterprise) -> str:
    keys: list[str] = []
    for a in e.aliases:
        for k in (normalize_text(a), normalize_company_name(a)):
            k = k.replace("|", "")
            if k and k not in keys:
                keys.append(k)
    return "|" + "|".join(keys) + "|" if keys else ""


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- engine and migrations ----------------------------------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, a 30 s busy timeout and their directory created."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, json_serializer=_json_serializer)
    database = u.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            json_serializer=_json_serializer,
        )
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, json_serializer=_json_serializer
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


# --- the store ----------------------------------------------------------------------------------------------------


class Store:
    """Enterprise and region profiles in a relational database.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////srv/chainmatch/chainmatch.db`` or
            ``postgresql+psycopg://user@host:5432/chainmatch``. The schema is migrated to head on open.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local = threading.local()
        self.origin: str | None = None  # written into the change log with every enterprise change

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        """The store at ``settings.database_url`` (default ``sqlite:///{data_dir}/chainmatch.db``)."""
        settings = settings or get_settings()
        if settings.database_url and settings.database_url.startswith("sqlite"):
            settings.ensure_dirs()
        return cls(settings.database_url or f"sqlite:///{settings.data_dir / 'chainmatch.db'}")

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    # --- sessions ---------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Session]:
        """One atomic unit of work: commits on success, rolls back on any exception.

        Store methods called inside the block (in the same thread) join it, so
        ``with store.transaction(): store.upsert_enterprises(a); store.upsert_region(r)`` is all-or-nothing.
        Nested calls join the outermost transaction.

        Args:
            write: On SQLite a write transaction takes the write lock when it begins (``BEGIN IMMEDIATE``), so
                concurrent writers queue instead of failing; pass ``write=False`` for blocks that only read,
                so they run beside writers on their WAL snapshot.
        """
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self._sessions() as session:
            self._local.session = session
            token = _WRITE_TXN.set(write)
            try:
                with session.begin():
                    yield session
            finally:
                _WRITE_TXN.reset(token)
                self._local.session = None

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`transaction` (in this thread)."""
        return getattr(self._local, "session", None) is not None

    @contextmanager
    def _reader(self) -> Iterator[Session]:
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self._sessions() as session:
            yield session

    # --- visibility -------------------------------------------------------------------------------------------
    @staticmethod
    def _visible(tenant: str | None, hide_shadowed: bool = True) -> ColumnElement[bool]:
        """Rows a tenant may read: shared + own (shared rows the tenant has its own version of are hidden)."""
        e = EnterpriseRow
        if tenant == ALL_TENANTS:
            return true()
        if tenant is None:
            return e.tenant.is_(None)
        if not hide_shadowed:
            return or_(e.tenant == tenant, e.tenant.is_(None))
        p = aliased(EnterpriseRow)
        shadow = exists().where(
            p.tenant == tenant,
            or_(
                and_(p.credit_code.is_not(None), p.credit_code == e.credit_code),
                and_(
                    p.normalized_name == e.normalized_name,
                    p.province.is_not_distinct_from(e.province),
                    or_(p.credit_code.is_(None), e.credit_code.is_(None)),
                    or_(p.stock_code.is_(None), e.stock_code.is_(None), p.stock_code == e.stock_code),
                ),
            ),
        )
        return or_(e.tenant == tenant, and_(e.tenant.is_(None), ~shadow))

    # --- enterprises: writes ----------------------------------------------------------------------------------
    def _prepare(self, e: Enterprise, tenant: str | None) -> Enterprise:
        update_: dict[str, Any] = {"id": scoped_id(e.id, tenant), "tenant": tenant}
        if not e.normalized_name:
            update_["normalized_name"] = normalize_company_name(e.name)
        if e.credit_code:
            try:
                update_["credit_code"] = validate_credit_code(e.credit_code)
            except ValueError as exc:
                raise InvalidRequestError(
                    f"enterprises[{e.id}].credit_code", e.credit_code, str(exc)
                ) from None
        else:
            update_["credit_code"] = None
        return e.model_copy(update=update_)

    def _existing(
        self, session: Session, items: list[Enterprise], tenant: str | None
    ) -> dict[str, dict[str, Any]]:
        """Rows of the scope that any item could match (by credit code, name or id): id -> key columns."""
        e = EnterpriseRow
        cols = (
            e.id,
            e.tenant,
            e.name,
            e.credit_code,
            e.stock_code,
            e.normalized_name,
            e.province,
            e.content_hash,
        )
        found: dict[str, dict[str, Any]] = {}
        keys: list[tuple[Any, list[str]]] = [
            (e.credit_code, sorted({i.credit_code for i in items if i.credit_code})),
            (e.normalized_name, sorted({i.normalized_name for i in items})),
            (e.id, sorted({i.id for i in items})),
        ]
        for column, values in keys:
            for chunk in _chunks(values):
                # the scope is filtered here, not in SQL: with "tenant IS NULL" in the WHERE clause SQLite may pick
                # the (unselective) tenant index over the key's index and scan the whole table per chunk
                for row in session.execute(select(*cols).where(column.in_(chunk))):
                    if row.tenant != tenant:
                        continue
                    found[row.id] = {
                        "credit_code": row.credit_code,
                        "stored_credit_code": row.credit_code,
                        "stock_code": row.stock_code,
                        "branch": branch_of(row.name),
                        "normalized_name": row.normalized_name,
                        "province": row.province,
                        "content_hash": row.content_hash,
                    }
        return found

    def upsert_enterprises(self, items: Iterable[Enterprise], tenant: str | None = None) -> UpsertSummary:
        """Insert new enterprises and update changed ones, in one transaction.

        Args:
            items: profiles; their ``tenant`` field is replaced by ``tenant``; ``normalized_name`` is derived from
                ``name`` when empty; ``credit_code`` is validated (GB 32100-2015).
            tenant: ``None`` writes the shared corpus; else the tenant's private rows (ids become ``{tenant}:{id}``).

        Returns:
            Counts of inserted / updated / unchanged rows and the ids that changed (now pending re-embedding).

        Raises:
            InvalidRequestError: a bad tenant name or credit code.
            StoreConflictError: the batch would put one credit code on two rows of the scope.
        """
        tenant = check_tenant(tenant)
        prepared = [self._prepare(e, tenant) for e in items]
        summary = UpsertSummary()
        if not prepared:
            return summary
        now = _now()
        try:
            with self.transaction() as session:
                state = self._existing(session, prepared, tenant)
                by_code: dict[str, str] = {}
                by_name: dict[tuple[str, str | None], list[str]] = {}
                for rid in sorted(state):
                    row = state[rid]
                    if row["credit_code"]:
                        by_code[row["credit_code"]] = rid
                    by_name.setdefault((row["normalized_name"], row["province"]), []).append(rid)
                final: dict[str, Enterprise] = {}
                for e in prepared:
                    target = by_code.get(e.credit_code) if e.credit_code else None
                    if target is None:
                        branch = branch_of(e.name)
                        for cand in by_name.get((e.normalized_name, e.province), []):
                            c = state[cand]
                            if _compatible(e.credit_code, e.stock_code, branch, c["credit_code"], c["stock_code"],
                                           c["branch"]):  # fmt: skip
                                target = cand
                                break
                    if target is None:
                        target = e.id
                    old = state.get(target)
                    if old is not None and old["credit_code"] and old["credit_code"] != e.credit_code:
                        by_code.pop(old["credit_code"], None)
                    if old is None:
                        old = state[target] = {"credit_code": None, "content_hash": None, "new": True}
                    old.update(
                        credit_code=e.credit_code,
                        stock_code=e.stock_code,
                        branch=branch_of(e.name),
                        normalized_name=e.normalized_name,
                        province=e.province,
                    )
                    if e.credit_code:
                        by_code[e.credit_code] = target
                    names = by_name.setdefault((e.normalized_name, e.province), [])
                    if target not in names:
                        names.append(target)
                    final[target] = e if e.id == target else e.model_copy(update={"id": target})
                    summary.ids.append(target)

                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                for rid, e in final.items():
                    profile, digest = _profile_json(e, now)
                    old = state[rid]
                    if not old.get("new") and old["content_hash"] == digest:
                        summary.unchanged += 1
                        continue
                    row = {
                        "id": rid,
                        "tenant": tenant,
                        "name": e.name,
                        "normalized_name": e.normalized_name,
                        "credit_code": e.credit_code,
                        "province": e.province,
                        "city": e.city,
                        "stock_code": e.stock_code,
                        "aliases": _aliases_key(e),
                        "profile": profile,
                        "content_hash": digest,
                        "embedded_hash": None,
                        "updated_at": now,
                    }
                    (inserts if old.get("new") else updates).append(row)
                    summary.changed_ids.append(rid)
                # credit codes moving between rows: free them first so the unique index never sees two holders
                moving = [
                    r for r in updates if state[r["id"]]["stored_credit_code"] not in (None, r["credit_code"])
                ]
                table = EnterpriseRow.__table__
                if moving:
                    free = table.update().where(table.c.id == bindparam("_id")).values(credit_code=None)
                    session.execute(free, [{"_id": r["id"]} for r in moving])
                if updates:
                    # Core executemany (one prepared statement, no ORM bookkeeping per row)
                    columns = [k for k in updates[0] if k != "id"]
                    stmt = (
                        table.update()
                        .where(table.c.id == bindparam("_id"))
                        .values({k: bindparam(f"_{k}") for k in columns})
                    )
                    for chunk in _chunks(updates, 5000):
                        session.execute(stmt, [{f"_{k}": v for k, v in r.items()} for r in chunk])
                for chunk in _chunks(inserts, 5000):
                    session.execute(table.insert(), list(chunk))
                self._log_changes(session, summary.changed_ids, tenant, "upsert", now)
                summary.inserted, summary.updated = len(inserts), len(updates)
        except IntegrityError as exc:
            raise StoreConflictError(f"enterprise upsert violates a uniqueness rule: {exc.orig}") from exc
        logger.info(
            "upsert (%s): %d inserted, %d updated, %d unchanged",
            tenant or "shared",
            summary.inserted,
            summary.updated,
            summary.unchanged,
        )
        return summary

    def delete_enterprise(self, enterprise_id: str, tenant: str | None = None) -> None:
        """Delete one enterprise.

        Raises:
            UnknownEnterpriseError: no such row visible to ``tenant``.
            SharedCorpusReadOnlyError: a tenant tried to delete a shared-corpus row.
        """
        tenant = check_tenant(tenant)
        with self.transaction() as session:
            row = session.execute(
                select(EnterpriseRow.id, EnterpriseRow.tenant).where(
                    EnterpriseRow.id == enterprise_id, self._visible(tenant, hide_shadowed=False)
                )
            ).first()
            if row is None:
                raise UnknownEnterpriseError(enterprise_id)
            if tenant is not None and row.tenant is None:
                raise SharedCorpusReadOnlyError("enterprise", enterprise_id, tenant)
            session.execute(delete(EnterpriseRow).where(EnterpriseRow.id == enterprise_id))
            self._log_changes(session, [enterprise_id], row.tenant, "delete", _now())

    def set_links(self, enterprise_id: str, links: list[LinkMatch]) -> None:
        """Replace an enterprise's mapped links (marks it for re-embedding when they changed).

        Raises:
            UnknownEnterpriseError: no row with this (stored) id.
        """
        with self.transaction() as session:
            row = session.get(EnterpriseRow, enterprise_id)
            if row is None:
                raise UnknownEnterpriseError(enterprise_id)
            profile = dict(row.profile)
            profile["links"] = [m.model_dump(mode="json") for m in links]
            digest = content_hash(profile)
            if digest == row.content_hash:
                return
            now = _now()
            profile["updated_at"] = now.isoformat()
            row.profile = profile
            row.content_hash = digest
            row.embedded_hash = None
            row.updated_at = now
            self._log_changes(session, [enterprise_id], row.tenant, "upsert", now)

    # --- change log --------------------------------------------------------------------------------------------
    def _log_changes(self, session: Session, ids: Sequence[str], tenant: str | None, op: str, at: datetime) -> None:
        rows = [{"enterprise_id": i, "tenant": tenant, "op": op, "origin": self.origin, "at": at} for i in ids]
        for chunk in _chunks(rows, 5000):
            session.execute(EnterpriseChangeRow.__table__.insert(), list(chunk))

    def last_change_seq(self) -> int:
        """The newest change's sequence number (0 when nothing changed yet): where a follower starts."""
        with self._reader() as session:
            return int(session.execute(select(func.max(EnterpriseChangeRow.seq))).scalar() or 0)

    def changes_since(
        self, after: int, also: Iterable[int] = (), limit: int = 10_000
    ) -> list[EnterpriseChange]:
        """Committed enterprise changes with ``seq > after`` (plus the seqs in ``also``: gaps a follower still
        waits for, since a sequence number can commit after a higher one), oldest first, at most ``limit``."""
        c = EnterpriseChangeRow
        also = list(also)
        cond = c.seq > after if not also else or_(c.seq > after, c.seq.in_(also))
        with self._reader() as session:
            rows = session.execute(
                select(c.seq, c.enterprise_id, c.tenant, c.op, c.origin).where(cond).order_by(c.seq).limit(limit)
            )
            return [EnterpriseChange(r.seq, r.enterprise_id, r.tenant, r.op, r.origin) for r in rows]

    def prune_changes(self, older_than: datetime) -> int:
        """Drop change-log entries older than ``older_than`` (followers read within seconds); returns how many."""
        with self.transaction() as session:
            res = session.execute(delete(EnterpriseChangeRow).where(EnterpriseChangeRow.at < older_than))
            return int(res.rowcount or 0)

    def pending_embedding(self, model_id: str) -> list[str]:
        """Ids (all tenants) whose content changed since they were last embedded with ``model_id``."""
        e = EnterpriseRow
        marker = literal(f"{model_id}:") + e.content_hash
        with self._reader() as session:
            rows = session.execute(
                select(e.id).where(or_(e.embedded_hash.is_(None), e.embedded_hash != marker)).order_by(e.id)
            )
            return [r.id for r in rows]

    def mark_embedded(self, ids: Sequence[str], model_id: str) -> None:
        """Record that ``ids`` are embedded, with ``model_id``, at their current content."""
        e = EnterpriseRow
        ids = list(ids)
        with self.transaction() as session:
            for chunk in _chunks(ids):
                session.execute(
                    update(e)
                    .where(e.id.in_(chunk))
                    .values(embedded_hash=literal(f"{model_id}:") + e.content_hash)
                )

    # --- enterprises: reads -----------------------------------------------------------------------------------
    def get_enterprise(self, enterprise_id: str, tenant: str | None = None) -> Enterprise:
        """One enterprise by its stored id, if visible to ``tenant``.

        Raises:
            UnknownEnterpriseError: no such id, or it belongs to another tenant.
        """
        tenant = check_tenant(tenant)
        with self._reader() as session:
            profile = session.execute(
                select(EnterpriseRow.profile).where(
                    EnterpriseRow.id == enterprise_id, self._visible(tenant, hide_shadowed=False)
                )
            ).scalar_one_or_none()
        if profile is None:
            raise UnknownEnterpriseError(enterprise_id)
        return Enterprise.model_validate(profile)

    def find_enterprises(self, query: str, tenant: str | None = None, limit: int = 20) -> list[Enterprise]:
        """Enterprises by name, alias (简称, 曾用名), normalised name, credit code or stock code.

        Exact matches come first, then substring matches of the name / normalised name / aliases, shorter
        names first.
        """
        tenant = check_tenant(tenant)
        raw = clean_text(query)
        if not raw or limit <= 0:
            return []
        norm = normalize_company_name(raw) or normalize_text(raw)
        key = normalize_text(raw)
        e = EnterpriseRow
        exact = [e.name == raw, e.normalized_name == norm, e.normalized_name == key, e.id == raw]
        exact.append(e.aliases.like(f"%|{_like_escape(key)}|%", escape="\\"))
        if len(key) == 18:
            exact.append(e.credit_code == key.upper())
        if key.isalnum() and len(key) <= 12:
            exact.append(e.stock_code == raw)
        visible = self._visible(tenant)
        order = (func.length(e.normalized_name), e.id)
        out: list[Enterprise] = []
        seen: set[str] = set()
        with self._reader() as session:
            rows = session.execute(
                select(e.id, e.profile).where(visible, or_(*exact)).order_by(*order).limit(limit)
            ).all()
            for r in rows:
                seen.add(r.id)
                out.append(Enterprise.model_validate(r.profile))
            if len(out) < limit:
                pattern = f"%{_like_escape(norm)}%"
                sub = or_(
                    e.normalized_name.like(pattern, escape="\\"),
                    e.name.like(f"%{_like_escape(raw)}%", escape="\\"),
                    e.aliases.like(f"%{_like_escape(key)}%", escape="\\"),
                )
                stmt = select(e.id, e.profile).where(visible, sub).order_by(*order).limit(limit + len(seen))
                for r in session.execute(stmt):
                    if r.id not in seen and len(out) < limit:
                        seen.add(r.id)
                        out.append(Enterprise.model_validate(r.profile))
        return out

    def iter_enterprises(self, tenant: str | None = None, batch_size: int = 1000) -> Iterator[Enterprise]:
        """Every enterprise visible to ``tenant`` (shared + own; :data:`ALL_TENANTS` for all rows), by id.

        Reads in keyset-paginated batches, each its own short query, so a long iteration holds no lock.
        """
        tenant = check_tenant(tenant, allow_all=True)
        if batch_size <= 0:
            raise InvalidRequestError("batch_size", batch_size, "expected a positive integer")
        e = EnterpriseRow
        last: str | None = None
        while True:
            stmt = select(e.id, e.profile).where(self._visible(tenant)).order_by(e.id).limit(batch_size)
            if last is not None:
                stmt = stmt.where(e.id > last)
            with self._reader() as session:
                rows = session.execute(stmt).all()
            if not rows:
                return
            for r in rows:
                yield Enterprise.model_validate(r.profile)
            last = rows[-1].id
            if len(rows) < batch_size:
                return

    def count_enterprises(self, tenant: str | None = None) -> int:
        """How many enterprises ``tenant`` sees (shared + own; :data:`ALL_TENANTS` for all rows)."""
        tenant = check_tenant(tenant, allow_all=True)
        with self._reader() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(EnterpriseRow).where(self._visible(tenant))
                ).scalar_one()
            )

    def enterprise_ids(self, tenant: str | None = None) -> list[str]:
        """Ids of every enterprise visible to ``tenant``, sorted."""
        tenant = check_tenant(tenant, allow_all=True)
        with self._reader() as session:
            rows = session.execute(
                select(EnterpriseRow.id).where(self._visible(tenant)).order_by(EnterpriseRow.id)
            )
            return [r.id for r in rows]

    # --- regions ------------------------------------------------------------------------------------------------
    @staticmethod
    def _region_key(region_id: str, tenant: str | None) -> str:
        return region_id if tenant is None else f"{tenant}:{region_id}"

    def upsert_region(self, region: Region) -> None:
        """Insert or replace a region; ``region.tenant`` decides whether it is shared or a tenant's own.

        A tenant's region with the same id as a shared one overrides it for that tenant only.
        """
        tenant = check_tenant(region.tenant)
        key = self._region_key(region.id, tenant)
        now = _now()
        profile = region.model_dump(mode="json")
        with self.transaction() as session:
            row = session.get(RegionRow, key)
            if row is None:
                session.add(RegionRow(key=key, id=region.id, tenant=tenant, profile=profile, updated_at=now))
            elif row.profile != profile:
                row.profile = profile
                row.updated_at = now

    def _visible_regions(self, session: Session, tenant: str | None) -> dict[str, Region]:
        r = RegionRow
        cond = r.tenant.is_(None) if tenant is None else or_(r.tenant.is_(None), r.tenant == tenant)
        out: dict[str, Region] = {}
        for row in session.execute(
            select(r.id, r.tenant, r.profile).where(cond).order_by(r.tenant.is_(None).desc())
        ):
            out[row.id] = Region.model_validate(row.profile)  # shared first, the tenant's own overrides
        return dict(sorted(out.items()))

    def get_region(self, region_id: str, tenant: str | None = None) -> Region:
        """A region by id (or exact name / alias) as ``tenant`` sees it: its own version first, else the shared one.

        Raises:
            UnknownRegionError: not found; the message lists the region ids visible to ``tenant``.
        """
        tenant = check_tenant(tenant)
        with self._reader() as session:
            keys = [self._region_key(region_id, tenant)] + ([region_id] if tenant is not None else [])
            for key in keys:
                row = session.get(RegionRow, key)
                if row is not None:
                    return Region.model_validate(row.profile)
            regions = self._visible_regions(session, tenant)
        wanted = normalize_text(region_id)
        for region in regions.values():
            if wanted in {normalize_text(n) for n in (region.name, *region.aliases)}:
                return region
        raise UnknownRegionError(region_id, sorted(regions))

    def list_regions(self, tenant: str | None = None) -> list[Region]:
        """Regions ``tenant`` sees (shared ones, overridden by its own of the same id), sorted by id."""
        tenant = check_tenant(tenant)
        with self._reader() as session:
            return list(self._visible_regions(session, tenant).values())

    def delete_region(self, region_id: str, tenant: str | None = None) -> None:
        """Delete a region: a tenant its own; ``tenant=None`` the shared one.

        Raises:
            UnknownRegionError: no such region for ``tenant``.
            SharedCorpusReadOnlyError: a tenant tried to delete a shared region.
        """
        tenant = check_tenant(tenant)
        with self.transaction() as session:
            row = session.get(RegionRow, self._region_key(region_id, tenant))
            if row is None:
                if tenant is not None and session.get(RegionRow, region_id) is not None:
                    raise SharedCorpusReadOnlyError("region", region_id, tenant)
                raise UnknownRegionError(region_id)
            session.delete(row)
