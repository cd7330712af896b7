"""The name index: the grams of every enterprise's name, normalised name and aliases, kept beside the rows.

Name search (:mod:`matcher.store.name_search`) asks it which rows of one partition (a tenant, or the shared corpus)
can contain a query, in time independent of how many rows other partitions hold, then checks those few rows with
the exact ``LIKE`` conditions. A row's grams are its lower-cased characters and the pairs of adjacent characters
(so 1- and 2-character queries are indexed too, which trigrams cannot do), each whole alias as one token (exact
alias look-ups), and one token naming its partition.

Candidates come shortest normalised name first, so a search reads about as many as it keeps, at any frequency:

- SQLite: an FTS5 table ``enterprise_search`` (``ascii`` tokenizer, one column per field, tokens separated by
  spaces, a query is a phrase of its adjacent pairs). Its rowid is the length of the normalised name (top 9 bits)
  and a 54-bit hash of the enterprise id, so matches come in length order and a row is replaced or removed
  without a look-up (two ids of one length and equal hash — odds under 3e-5 at a million rows — would share one
  entry).
- PostgreSQL: a table ``enterprise_search(id, tenant, len, grams text[])`` with a GIN index on the grams and a
  b-tree on ``(tenant, len, id)``; a query is ``tenant = ... AND grams @> ...`` ordered by ``(len, id)``, with the
  term's rarest grams only (by the element statistics ``ANALYZE`` keeps), so the planner either walks the
  partition in length order (a frequent term) or intersects a few short posting lists (a rare one).

The store writes the index in the same transaction as the rows (:func:`index_names`, :func:`unindex_names`);
migration ``0005`` creates it and fills it from the rows already stored (:func:`rebuild_name_index`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

__all__ = [
    "FIELDS",
    "SEARCH_TABLE",
    "create_name_index",
    "index_names",
    "name_candidates",
    "rebuild_name_index",
    "unindex_names",
]

logger = logging.getLogger(__name__)

SEARCH_TABLE = "enterprise_search"
FIELDS = ("name", "normalized_name", "aliases", "alias")
"""Searchable fields: substrings of the first three, and ``alias``: equal to one whole alias."""
_PARTITION = "\ue0ff\ue0ff"  # partition and alias tokens are ≥ 3 characters, grams at most 2: they never collide
_ALIAS = "\ue0fe\ue0fe"
_PUNCT = 0xF700  # ASCII punctuation, spaces and controls move here: the ascii tokenizer would split on them


def _fold(value: str) -> str:
    """Lower-cased, with every ASCII character that is not a letter or digit moved to a private-use code point."""
    return "".join(c if not c.isascii() or c.isalnum() else chr(_PUNCT + ord(c)) for c in value.lower())


def field_grams(value: str) -> list[str]:
    """The tokens a field is indexed under: its adjacent pairs in order, then its distinct characters."""
    s = _fold(value)
    return [s[i : i + 2] for i in range(len(s) - 1)] + sorted(set(s))


def query_grams(value: str) -> list[str]:
    """The tokens a field must hold, in order, to contain ``value``: the character, or the adjacent pairs."""
    s = _fold(value)
    return [s] if len(s) == 1 else [s[i : i + 2] for i in range(len(s) - 1)]


def partition_token(tenant: str | None) -> str:
    """The token every row of ``tenant`` (``None``: the shared corpus) is indexed under."""
    return _PARTITION + ("shared" if tenant is None else tenant.encode().hex())


_MAX_PAGE = 2000
_LEN_SHIFT = 54
_MAX_LEN = (1 << 9) - 1


def _rowid(enterprise_id: str, normalized_name: str | None) -> int:
    digest = hashlib.blake2b(enterprise_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    length = min(len(normalized_name or ""), _MAX_LEN)
    return (length << _LEN_SHIFT) | (int.from_bytes(digest, "big") >> (64 - _LEN_SHIFT))


def _dialect(bind: Session | Connection) -> str:
    return bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name


def create_name_index(conn: Connection) -> None:
    """Create the (empty) index table for the connection's dialect."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
            "id UNINDEXED, len UNINDEXED, t, n, r, a, x, tokenize='ascii', columnsize=0)"
        )
        return
    conn.exec_driver_sql(
        f"CREATE TABLE {SEARCH_TABLE} (id VARCHAR(200) PRIMARY KEY, tenant VARCHAR(64), len INTEGER NOT NULL, "
        "grams TEXT[] NOT NULL)"
    )
    conn.exec_driver_sql(f"CREATE INDEX ix_{SEARCH_TABLE}_grams ON {SEARCH_TABLE} USING gin (grams)")
    conn.exec_driver_sql(f"CREATE INDEX ix_{SEARCH_TABLE}_len ON {SEARCH_TABLE} (tenant, len, id)")


def _whole_aliases(aliases: str) -> list[str]:
    """Each alias as one token, marked so it is a term of its own (a column filter alone would walk the doclist
    of an equal gram: 公司 in a million names)."""
    return sorted({_ALIAS + _fold(a) for a in aliases.split("|") if a})


def _sqlite_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    name, norm = _fold(row["name"] or ""), _fold(row["normalized_name"] or "")
    return {
        "k": _rowid(row["id"], row["normalized_name"]),
        "id": row["id"],
        "len": len(row["normalized_name"] or ""),
        "t": partition_token(row["tenant"]),
        # a normalised name inside the name is found through the name's grams (queried on both columns)
        "n": "" if norm in name else " ".join(field_grams(row["normalized_name"])),
        "r": " ".join(field_grams(row["name"] or "")),
        "a": " ".join(field_grams(row["aliases"] or "")),
        "x": " ".join(_whole_aliases(row["aliases"] or "")),
    }


def _pg_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    grams = set(_whole_aliases(row["aliases"] or ""))
    for f in ("name", "normalized_name", "aliases"):
        grams.update(field_grams(row[f] or ""))
    return {"id": row["id"], "tenant": row["tenant"], "len": len(row["normalized_name"] or ""), "grams": sorted(grams)}


def index_names(
    bind: Session | Connection, rows: Sequence[Mapping[str, Any]], previous: Mapping[str, str | None] | None = None
) -> None:
    """(Re)index ``rows`` (mappings with ``id``, ``tenant``, ``name``, ``normalized_name``, ``aliases``).

    Args:
        previous: the stored normalised name of rows that were indexed before (id -> name), so their old
            entries go (SQLite keys entries by the name's length).
    """
    if not rows:
        return
    if _dialect(bind) == "sqlite":
        if previous:
            unindex_names(bind, previous)
        stmt = text(
            f"INSERT OR REPLACE INTO {SEARCH_TABLE} (rowid, id, len, t, n, r, a, x) "
            "VALUES (:k, :id, :len, :t, :n, :r, :a, :x)"
        )
        bind.execute(stmt, [_sqlite_entry(r) for r in rows])
        return
    stmt = text(
        f"INSERT INTO {SEARCH_TABLE} (id, tenant, len, grams) VALUES (:id, :tenant, :len, CAST(:grams AS TEXT[])) "
        "ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, len = excluded.len, grams = excluded.grams"
    )
    bind.execute(stmt, [_pg_entry(r) for r in rows])


def unindex_names(bind: Session | Connection, stored: Mapping[str, str | None]) -> None:
    """Remove the entries of the rows ``stored`` names (id -> stored normalised name; absent ones are ignored)."""
    if not stored:
        return
    if _dialect(bind) == "sqlite":
        keys = [{"k": _rowid(i, n)} for i, n in stored.items()]
        bind.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE rowid = :k"), keys)
    else:
        bind.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE id = :id"), [{"id": i} for i in stored])


def rebuild_name_index(conn: Connection, batch: int = 5000) -> int:
    """Index every stored enterprise (keyset-paginated); returns how many rows were indexed."""
    done = 0
    last = ""
    while True:
        rows = conn.execute(
            text(
                "SELECT id, tenant, name, normalized_name, aliases FROM enterprises WHERE id > :last "
                "ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": batch},
        ).mappings().all()  # fmt: skip
        if not rows:
            break
        index_names(conn, rows)
        done += len(rows)
        last = rows[-1]["id"]
    if done:
        logger.info("name index: %d enterprises indexed", done)
    return done


def _fts_phrase(value: str) -> str:
    return '"' + " ".join(query_grams(value)) + '"'  # grams hold no '"' or space (_fold moved them)


def _pg_tokens(field: str, value: str) -> list[str]:
    return [_ALIAS + _fold(value)] if field == "alias" else query_grams(value)


def _sqlite_query(tenant: str | None, terms: Sequence[tuple[str, str]]) -> str:
    columns = {"name": "r", "normalized_name": "{n r}", "aliases": "a"}
    ors = " OR ".join(
        f'x : "{_ALIAS}{_fold(v)}"' if f == "alias" else f"{columns[f]} : {_fts_phrase(v)}" for f, v in terms
    )
    return f't : "{partition_token(tenant)}" AND ({ors})'


def _sqlite_pages(session: Session, query: str, page: int) -> Iterator[list[tuple[str, int]]]:
    """Matches in rowid order (length, then id hash), one page per query."""
    last = -1
    stmt = text(
        f"SELECT rowid, id, len FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :q AND rowid > :last "
        "ORDER BY rowid LIMIT :n"
    )
    while True:
        rows = session.execute(stmt, {"q": query, "last": last, "n": page}).all()
        if rows:
            yield [(r[1], int(r[2])) for r in rows]
            last = rows[-1][0]
        if len(rows) < page:
            return
        page = min(2 * page, _MAX_PAGE)


_STATS_TTL_S = 600.0
_FREQUENT = 0.01  # share of rows above which a gram is walked to in length order rather than looked up
_stats: dict[str, tuple[float, dict[str, float]]] = {}  # database url -> (read at, gram -> share of rows)


def _gram_shares(session: Session) -> dict[str, float]:
    """The most common grams and the share of rows holding each (``pg_stats``, kept by ``ANALYZE``), cached."""
    url = str(session.get_bind().url)
    now = time.monotonic()
    cached = _stats.get(url)
    if cached is None or now - cached[0] > _STATS_TTL_S:
        row = session.execute(
            text(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE tablename = :t AND attname = 'grams' AND schemaname = current_schema()"
            ),
            {"t": SEARCH_TABLE},
        ).first()
        shares = dict(zip(row[0], row[1], strict=False)) if row and row[0] else {}
        cached = _stats[url] = (now, shares)
    return cached[1]


def _rarest(tokens: list[str], shares: Mapping[str, float], keep: int = 3) -> list[str]:
    """The ``keep`` tokens held by the fewest rows (one not among the most common counts as rarest)."""
    return sorted(set(tokens), key=lambda g: (shares.get(g, 0.0), g))[:keep]


def _pg_pages(
    session: Session, tenant: str | None, terms: Sequence[tuple[str, str]], page: int
) -> Iterator[list[tuple[str, int]]]:
    shares = _gram_shares(session)
    sets = sorted({tuple(_rarest(_pg_tokens(f, v), shares)) for f, v in terms})
    where = " OR ".join(f"grams @> CAST(:g{i} AS TEXT[])" for i in range(len(sets)))
    params: dict[str, Any] = {f"g{i}": list(s) for i, s in enumerate(sets)}
    part = "tenant IS NULL" if tenant is None else "tenant = :tenant"
    # a term whose rarest gram is rare: its posting lists, then a sort ("len + 0" keeps the planner off the
    # ordered walk, which would read the whole partition when few or no rows match); else the ordered walk
    # stops within about limit / share rows
    rare = all(shares.get(s[0], 0.0) < _FREQUENT for s in sets)
    order = "len + 0, id" if rare else "len, id"
    stmt = text(
        f"SELECT id, len FROM {SEARCH_TABLE} WHERE {part} AND ({where}) AND (len, id) > (:len, :id) "
        f"ORDER BY {order} LIMIT :n"
    )
    after: tuple[int, str] = (-1, "")
    while True:
        rows = session.execute(stmt, {**params, "tenant": tenant, "len": after[0], "id": after[1], "n": page}).all()
        if rows:
            yield [(r[0], int(r[1])) for r in rows]
            after = (int(rows[-1][1]), rows[-1][0])
        if len(rows) < page:
            return
        page = min(2 * page, _MAX_PAGE)


def name_candidates(
    session: Session, tenant: str | None, terms: Sequence[tuple[str, str]], page: int = 20
) -> Iterator[list[tuple[str, int]]]:
    """Rows of ``tenant``'s partition whose fields may contain the terms, in pages, shortest normalised name
    first (then by id on PostgreSQL, by id hash on SQLite): ``(id, length of normalised name)``. A superset of
    the rows that match: check them.

    Args:
        terms: ``(field, value)`` pairs, any one of which may match; ``field`` is one of :data:`FIELDS`.
        page: entries read by the first query; each next one reads twice as many (up to 2,000).
    """
    terms = [(f, v) for f, v in dict.fromkeys(terms) if _fold(v)]
    if not terms:
        return iter(())
    if _dialect(session) == "sqlite":
        return _sqlite_pages(session, _sqlite_query(tenant, terms), page)
    return _pg_pages(session, tenant, terms, page)
