"""The name index: the grams of every enterprise's name, normalised name and aliases, kept beside the rows.

Name search (:mod:`matcher.store.name_search`) asks it which rows of one partition (a tenant, or the shared corpus)
can contain a query, in time independent of how many rows other partitions hold, then checks those few rows with
the exact ``LIKE`` conditions. A row's grams are its lower-cased characters and the pairs of adjacent characters
(so 1- and 2-character queries are indexed too, which trigrams cannot do), each whole alias as one token (exact
alias look-ups), and one token naming its partition.

- SQLite: an FTS5 table ``enterprise_search`` (``ascii`` tokenizer, one column per field, tokens separated by
  spaces, a query is a phrase of its adjacent pairs); its rowid is a 63-bit hash of the enterprise id, so a row is
  replaced or removed without a look-up (two ids of equal hash — odds about 5e-8 at a million rows — would share
  one entry).
- PostgreSQL: a table ``enterprise_search(id, len, grams text[])`` with a GIN index; a query is ``grams @> ...``.

The store writes the index in the same transaction as the rows (:func:`index_names`, :func:`unindex_names`);
migration ``0005`` creates it and fills it from the rows already stored (:func:`rebuild_name_index`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
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


def _rowid(enterprise_id: str) -> int:
    digest = hashlib.blake2b(enterprise_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


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
        f"CREATE TABLE {SEARCH_TABLE} (id VARCHAR(200) PRIMARY KEY, len INTEGER NOT NULL, grams TEXT[] NOT NULL)"
    )
    conn.exec_driver_sql(f"CREATE INDEX ix_{SEARCH_TABLE}_grams ON {SEARCH_TABLE} USING gin (grams)")


def _whole_aliases(aliases: str) -> list[str]:
    return sorted({_fold(a) for a in aliases.split("|") if a})


def _sqlite_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    name, norm = _fold(row["name"] or ""), _fold(row["normalized_name"] or "")
    return {
        "k": _rowid(row["id"]),
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
    grams = {partition_token(row["tenant"]), *(_ALIAS + a for a in _whole_aliases(row["aliases"] or ""))}
    for f in ("name", "normalized_name", "aliases"):
        grams.update(field_grams(row[f] or ""))
    return {"id": row["id"], "len": len(row["normalized_name"] or ""), "grams": sorted(grams)}


def index_names(bind: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """(Re)index ``rows`` (mappings with ``id``, ``tenant``, ``name``, ``normalized_name``, ``aliases``)."""
    if not rows:
        return
    if _dialect(bind) == "sqlite":
        stmt = text(
            f"INSERT OR REPLACE INTO {SEARCH_TABLE} (rowid, id, len, t, n, r, a, x) "
            "VALUES (:k, :id, :len, :t, :n, :r, :a, :x)"
        )
        bind.execute(stmt, [_sqlite_entry(r) for r in rows])
        return
    stmt = text(
        f"INSERT INTO {SEARCH_TABLE} (id, len, grams) VALUES (:id, :len, CAST(:grams AS TEXT[])) "
        "ON CONFLICT (id) DO UPDATE SET len = excluded.len, grams = excluded.grams"
    )
    bind.execute(stmt, [_pg_entry(r) for r in rows])


def unindex_names(bind: Session | Connection, ids: Iterable[str]) -> None:
    """Remove the entries of ``ids`` (absent ones are ignored)."""
    ids = list(ids)
    if not ids:
        return
    if _dialect(bind) == "sqlite":
        bind.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE rowid = :k"), [{"k": _rowid(i)} for i in ids])
    else:
        bind.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE id = :id"), [{"id": i} for i in ids])


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


def name_candidates(
    session: Session, tenant: str | None, terms: Sequence[tuple[str, str]], cap: int
) -> list[tuple[str, int]] | None:
    """Rows of ``tenant``'s partition whose fields may contain the terms: ``(id, length of normalised name)``.

    Args:
        terms: ``(field, value)`` pairs, any one of which may match; ``field`` is one of :data:`FIELDS`.
        cap: read at most this many entries.

    Returns:
        Every candidate (a superset of the rows that match; check them), or ``None`` when there are ``cap`` or
        more — the caller then scans instead.
    """
    terms = [(f, v) for f, v in dict.fromkeys(terms) if _fold(v)]
    if not terms:
        return []
    if _dialect(session) == "sqlite":
        columns = {"name": "r", "normalized_name": "{n r}", "aliases": "a", "alias": "x"}
        ors = " OR ".join(
            f'x : "{_fold(v)}"' if f == "alias" else f"{columns[f]} : {_fts_phrase(v)}" for f, v in terms
        )
        query = f't : "{partition_token(tenant)}" AND ({ors})'
        rows = session.execute(
            text(f"SELECT id, len FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :q LIMIT :cap"),
            {"q": query, "cap": cap},
        ).all()
    else:
        sets = sorted({tuple(sorted({partition_token(tenant), *_pg_tokens(f, v)})) for f, v in terms})
        where = " OR ".join(f"grams @> CAST(:g{i} AS TEXT[])" for i in range(len(sets)))
        params: dict[str, Any] = {f"g{i}": list(s) for i, s in enumerate(sets)}
        rows = session.execute(
            text(f"SELECT id, len FROM {SEARCH_TABLE} WHERE {where} LIMIT :cap"), {**params, "cap": cap}
        ).all()
    if len(rows) >= cap:
        return None
    return [(r[0], int(r[1])) for r in rows]
