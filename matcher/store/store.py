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

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from matcher.errors import ChainMatchError, InvalidRequestError, QueryTimeoutError, UnknownEnterpriseError
from matcher.records import Enterprise, LinkMatch
from matcher.settings import Settings, get_settings
from matcher.store.change_feed import ChangeFeed
from matcher.store.credit_code import validate_credit_code
from matcher.store.database import _WRITE_TXN, _chunks, _now, is_statement_timeout, make_engine, upgrade
from matcher.store.db_models import EnterpriseRow
from matcher.store.enterprise_upsert import (
    UpsertSummary,
    existing_rows,
    merge_stored,
    source_hash_for,
    stamp_source_hashes,
)
from matcher.store.identity import _aliases_key, _compatible, _profile_json, branch_of, content_hash
from matcher.store.identity import former_keys, merge_profiles
from matcher.store.name_index import index_names, unindex_names
from matcher.store.name_search import find_enterprises
from matcher.store.region_store import RegionStore
from matcher.store.tenancy import ALL_TENANTS, SharedCorpusReadOnlyError, check_tenant, scoped_id
from matcher.text import normalize_company_name

__all__ = ["Store", "StoreConflictError", "UpsertSummary"]

logger = logging.getLogger(__name__)

"""Pass as ``tenant`` to :meth:`Store.iter_enterprises` / :meth:`Store.count_enterprises` to read every row of
every tenant (index building); never accepted by writes."""


"""Whether the transaction being begun in this context may write (SQLite: ``BEGIN IMMEDIATE``)."""


class StoreConflictError(ChainMatchError):
    """A write would violate a uniqueness rule (e.g. one credit code on two rows of the same tenant)."""

    code = "store_conflict"




class Store(ChangeFeed, RegionStore):
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

    def upsert_enterprises(
        self,
        items: Iterable[Enterprise],
        tenant: str | None = None,
        *,
        source_hashes: Sequence[str | None] | None = None,
    ) -> UpsertSummary:
        """Insert new enterprises and update changed ones, in one transaction.

        Args:
            items: profiles; their ``tenant`` field is replaced by ``tenant``; ``normalized_name`` is derived from
                ``name`` when empty; ``credit_code`` is validated (GB 32100-2015).
            tenant: ``None`` writes the shared corpus; else the tenant's private rows (ids become ``{tenant}:{id}``).
            source_hashes: the importer's hash of each item's source row (aligned with ``items``), stored as the
                rows' ``source_hash`` so a re-import can skip them; without it written rows get NULL.

        Returns:
            Counts of inserted / updated / unchanged rows and the ids that changed (now pending re-embedding).

        Raises:
            InvalidRequestError: a bad tenant name or credit code.
            StoreConflictError: the batch would put one credit code on two rows of the scope.
        """
        tenant = check_tenant(tenant)
        prepared = [self._prepare(e, tenant) for e in items]
        hashes = list(source_hashes) if source_hashes is not None else [None] * len(prepared)
        if len(hashes) != len(prepared):
            raise InvalidRequestError("source_hashes", len(hashes), f"expected {len(prepared)} hashes, one per item")
        inputs: dict[str, list[tuple[Enterprise, str | None]]] = {}
        summary = UpsertSummary()
        if not prepared:
            return summary
        now = _now()
        try:
            with self.transaction() as session:
                state = existing_rows(session, prepared, tenant)
                stored = {rid: row["normalized_name"] for rid, row in state.items()}  # their name-index keys
                by_code: dict[str, str] = {}
                by_stock: dict[str, str] = {}
                by_name: dict[tuple[str, str | None], list[str]] = {}
                for rid in sorted(state):
                    row = state[rid]
                    if row["credit_code"]:
                        by_code[row["credit_code"]] = rid
                    if row["stock_code"]:
                        by_stock.setdefault(row["stock_code"], rid)
                    by_name.setdefault((row["normalized_name"], row["province"]), []).append(rid)
                final: dict[str, Enterprise] = {}
                for e, source_hash in zip(prepared, hashes, strict=True):
                    target = by_code.get(e.credit_code) if e.credit_code else None
                    if target is None and e.stock_code and not branch_of(e.name):
                        # one listed firm, one record: a renamed shell keeps its code (天业通联 → 晶澳)
                        cand = by_stock.get(e.stock_code)
                        if cand is not None and not (e.credit_code and state[cand]["credit_code"]
                                                     and state[cand]["credit_code"] != e.credit_code):  # fmt: skip
                            target = cand
                    if target is None:
                        branch = branch_of(e.name)
                        for cand in by_name.get((e.normalized_name, e.province), []):
                            c = state[cand]
                            if _compatible(e.credit_code, e.stock_code, branch, c["credit_code"], c["stock_code"],
                                           c["branch"]):  # fmt: skip
                                target = cand
                                break
                    if target is None:  # a stored record under one of the firm's former names (曾用名)
                        branch = branch_of(e.name)
                        target = next((cand for a in former_keys(e) for cand in by_name.get((a, e.province), [])
                                       if _compatible(e.credit_code, e.stock_code, branch, state[cand]["credit_code"],
                                                      state[cand]["stock_code"], state[cand]["branch"])), None)  # fmt: skip
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
                    if e.stock_code:
                        by_stock.setdefault(e.stock_code, target)
                    names = by_name.setdefault((e.normalized_name, e.province), [])
                    if target not in names:
                        names.append(target)
                    if target in final:  # two items of the batch are one firm: merge them too
                        e, lost = merge_profiles(final[target], e.model_copy(update={"id": target}))
                        summary.note_conflicts(lost)
                    final[target] = e if e.id == target else e.model_copy(update={"id": target})
                    summary.ids.append(target)
                    inputs.setdefault(target, []).append((e, source_hash))
                merge_stored(session, final, state, summary)
                row_hashes = source_hash_for(final, inputs)
                stamps: list[tuple[str, str | None]] = []

                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                for rid, e in final.items():
                    profile, digest = _profile_json(e)
                    old = state[rid]
                    if not old.get("new") and old["content_hash"] == digest:
                        summary.unchanged += 1
                        if row_hashes[rid] is not None and row_hashes[rid] != old.get("source_hash"):
                            stamps.append((rid, row_hashes[rid]))
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
                        "source_hash": row_hashes[rid],
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
                index_names(session, [*inserts, *updates], previous={r["id"]: stored[r["id"]] for r in updates})
                stamp_source_hashes(session, stamps)
                summary.change_seqs = self._log_changes(session, summary.changed_ids, tenant, "upsert", now)
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

    def delete_enterprise(self, enterprise_id: str, tenant: str | None = None) -> list[int]:
        """Delete one enterprise; returns the change-feed sequence numbers it appended.

        Raises:
            UnknownEnterpriseError: no such row visible to ``tenant``.
            SharedCorpusReadOnlyError: a tenant tried to delete a shared-corpus row.
        """
        tenant = check_tenant(tenant)
        with self.transaction() as session:
            row = session.execute(
                select(EnterpriseRow.id, EnterpriseRow.tenant, EnterpriseRow.normalized_name).where(
                    EnterpriseRow.id == enterprise_id, self._visible(tenant, hide_shadowed=False)
                )
            ).first()
            if row is None:
                raise UnknownEnterpriseError(enterprise_id)
            if tenant is not None and row.tenant is None:
                raise SharedCorpusReadOnlyError("enterprise", enterprise_id, tenant)
            session.execute(delete(EnterpriseRow).where(EnterpriseRow.id == enterprise_id))
            unindex_names(session, {enterprise_id: row.normalized_name})
            return self._log_changes(session, [enterprise_id], row.tenant, "delete", _now())

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
            row.source_hash = None  # no longer what the import row wrote
            self._log_changes(session, [enterprise_id], row.tenant, "upsert", now)

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

    def enterprises_by_id(self, ids: Iterable[str]) -> dict[str, Enterprise]:
        """The stored enterprises (any tenant) with these ids, read in chunks of 500: what the index needs to
        apply a batch of change-feed entries. Ids not stored (deleted) are simply absent from the result."""
        out: dict[str, Enterprise] = {}
        wanted = list(dict.fromkeys(ids))
        with self._reader() as session:
            for chunk in _chunks(wanted, 500):
                rows = session.execute(select(EnterpriseRow.id, EnterpriseRow.profile).where(EnterpriseRow.id.in_(chunk)))
                for rid, profile in rows:
                    out[rid] = Enterprise.model_validate(profile)
        return out

    def find_enterprises(self, query: str, tenant: str | None = None, limit: int = 20) -> list[Enterprise]:
        """Enterprises by name, alias (简称, 曾用名), normalised name, credit code or stock code.

        Exact matches come first, then substring matches of the name / normalised name / aliases, shorter
        names first. Backed by the name index, so the cost does not grow with the partitions' sizes
        (:mod:`matcher.store.name_search`).
        """
        tenant = check_tenant(tenant)
        try:
            with self._reader() as session:
                return find_enterprises(session, query, tenant, limit)
        except OperationalError as exc:
            if is_statement_timeout(exc):
                raise QueryTimeoutError(f"name search {query[:40]!r} ran past the statement timeout") from exc
            raise

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
