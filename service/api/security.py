"""API keys: each bound to one tenant, stored hashed, checked in constant time.

A key looks like ``cmk_<id>_<secret>``: ``id`` (12 hex digits) names the row, ``secret`` (32 random bytes,
URL-safe base64) is never stored — the row keeps a random per-key salt and ``HMAC-SHA256(salt, secret)``. A
presented key is hashed the same way and compared with :func:`hmac.compare_digest`; unknown ids and revoked keys
still cost one hash, so timing does not tell them apart from a wrong secret.

Keys are created and revoked from the CLI (``chainmatch apikey create --tenant T``), which prints a new key once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, String, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from matcher.errors import ChainMatchError, InvalidRequestError
from matcher.store.db_models import Base
from matcher.store.tenancy import check_tenant

if TYPE_CHECKING:
    from matcher.store.store import Store

__all__ = [
    "ApiKey",
    "ApiKeyRow",
    "UnknownApiKeyError",
    "count_active_keys",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
    "verify_api_key",
]

logger = logging.getLogger(__name__)

PREFIX = "cmk"
_KEY = re.compile(r"^cmk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key
_DUMMY_SALT = bytes(16)


class UnknownApiKeyError(ChainMatchError, KeyError):
    """No API key with this id."""

    code = "unknown_api_key"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"unknown API key id '{key}' (see `chainmatch apikey list`)")

    def __str__(self) -> str:
        return str(self.args[0])


class ApiKeyRow(Base):
    """One API key (hash only)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    salt: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class ApiKey:
    """A key's public metadata (never the secret)."""

    id: str
    tenant: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            row.id,
            row.tenant,
            row.name,
            _aware(row.created_at),
            _aware(row.revoked_at),
            _aware(row.last_used_at),
        )


def _hash(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)


def create_api_key(store: Store, tenant: str, name: str = "") -> tuple[ApiKey, str]:
    """Create a key for ``tenant``.

    Returns:
        The key's metadata and the full key string — shown once, never stored.

    Raises:
        InvalidRequestError: the tenant name is not valid (letters, digits, ``_.-``), or the name is too long.
    """
    if tenant is None:
        raise InvalidRequestError("tenant", tenant, "every API key belongs to a tenant")
    check_tenant(tenant)
    if len(name) > 200:
        raise InvalidRequestError("name", name[:20], "expected at most 200 characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    row = ApiKeyRow(
        id=key_id, tenant=tenant, name=name, salt=salt.hex(), key_hash=_hash(salt, secret), created_at=_now()
    )
    with store.transaction() as session:
        session.add(row)
        session.flush()
        meta = ApiKey.from_row(row)
    logger.info("API key %s created for tenant %s", key_id, tenant)
    return meta, f"{PREFIX}_{key_id}_{secret}"


def revoke_api_key(store: Store, key_id: str) -> ApiKey:
    """Revoke a key now (idempotent).

    Raises:
        UnknownApiKeyError: no key with this id.
    """
    with store.transaction() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            raise UnknownApiKeyError(key_id)
        if row.revoked_at is None:
            row.revoked_at = _now()
        session.flush()
        meta = ApiKey.from_row(row)
    logger.info("API key %s revoked", key_id)
    return meta


def list_api_keys(store: Store, tenant: str | None = None) -> list[ApiKey]:
    """Every key (of one tenant when given), oldest first."""
    stmt = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if tenant is not None:
        stmt = stmt.where(ApiKeyRow.tenant == tenant)
    with store.transaction(write=False) as session:
        return [ApiKey.from_row(r) for r in session.execute(stmt).scalars()]


def count_active_keys(store: Store, tenant: str | None = None) -> int:
    """How many keys are not revoked (of one tenant when given)."""
    stmt = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
    if tenant is not None:
        stmt = stmt.where(ApiKeyRow.tenant == tenant)
    with store.transaction(write=False) as session:
        return int(session.execute(stmt).scalar_one())


def verify_api_key(store: Store, presented: str | None) -> ApiKey | None:
    """The active key matching ``presented``, or None (malformed, unknown, revoked or wrong secret)."""
    match = _KEY.match(presented or "")
    if match is None:
        hmac.compare_digest(_hash(_DUMMY_SALT, presented or ""), "0" * 64)
        return None
    key_id, secret = match.groups()
    with store.transaction(write=False) as session:  # every request: never waits for the store's writers
        row = session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            hmac.compare_digest(_hash(_DUMMY_SALT, secret), "0" * 64)
            return None
        if not hmac.compare_digest(_hash(bytes.fromhex(row.salt), secret), row.key_hash):
            return None
        key = ApiKey.from_row(row)
    now = _now()
    last = _aware(key.last_used_at)
    if last is None or now - last > _TOUCH_EVERY:
        try:  # bookkeeping in its own short write transaction; a busy store must not fail the request
            with store.transaction() as session:
                session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now))
        except OperationalError as exc:
            logger.warning("API key %s: last-used time not recorded (%s)", key_id, exc.orig)
    return key
