"""Persistence and ingestion: where enterprises, regions, leads and feedback live, and how they get there.

- `store` (`Store`) over `database` (engines, Alembic migrations in `matcher/migrations`), with `tenancy`,
  `identity` (same firm, content hash), `change_feed` and `region_store`; `db_models`: the tables;
- `lead_store` and `feedback`: CRM leads, their events and training exports;
- `importer` (package): register exports, spreadsheets and JSON lines -> validated enterprises -> the store;
- `ashare` and `demo`: the embedded corpora; `credit_code`: 统一社会信用代码 checks;
- `workspace`: catalogue + regions + store opened together from the settings.
"""

from __future__ import annotations

from matcher.store.ashare import KG, LOCATION, ashare_id, load_ashare_corpus
from matcher.store.change_feed import ChangeFeed, EnterpriseChange
from matcher.store.credit_code import (
    CHARSET,
    WEIGHTS,
    check_character,
    is_valid_credit_code,
    validate_credit_code,
)
from matcher.store.database import alembic_config, upgrade
from matcher.store.db_models import JSON_TYPE, Base, EnterpriseChangeRow, EnterpriseRow, RegionRow
from matcher.store.demo import DEMO_ENTERPRISES_FILE, load_demo_enterprises, parse_enterprise_jsonl
from matcher.store.feedback import GRADES, export_training_events, outcome_label
from matcher.store.identity import branch_of, content_hash, same_firm
from matcher.store.importer import (
    COLUMNS,
    MAX_LENGTH,
    ImportReport,
    RowIssue,
    default_mapper,
    enterprise_id,
    import_file,
    map_headers,
    parse_products,
    read_enterprises,
    write_rejects,
)
from matcher.store.lead_store import (
    TRANSITIONS,
    InvalidTransitionError,
    Lead,
    LeadEvent,
    LeadEventRow,
    LeadRow,
    LeadStatus,
    UnknownLeadError,
    create_lead,
    get_lead,
    iter_events,
    lead_events,
    list_leads,
    update_lead,
)
from matcher.store.region_store import RegionStore
from matcher.store.store import Store, StoreConflictError, UpsertSummary
from matcher.store.tenancy import ALL_TENANTS, SharedCorpusReadOnlyError, scoped_id
from matcher.store.workspace import Workspace

__all__ = [
    "ALL_TENANTS",
    "Base",
    "CHARSET",
    "COLUMNS",
    "ChangeFeed",
    "DEMO_ENTERPRISES_FILE",
    "EnterpriseChange",
    "EnterpriseChangeRow",
    "EnterpriseRow",
    "GRADES",
    "ImportReport",
    "InvalidTransitionError",
    "JSON_TYPE",
    "KG",
    "LOCATION",
    "Lead",
    "LeadEvent",
    "LeadEventRow",
    "LeadRow",
    "LeadStatus",
    "MAX_LENGTH",
    "RegionRow",
    "RegionStore",
    "RowIssue",
    "SharedCorpusReadOnlyError",
    "Store",
    "StoreConflictError",
    "TRANSITIONS",
    "UnknownLeadError",
    "UpsertSummary",
    "WEIGHTS",
    "Workspace",
    "alembic_config",
    "ashare_id",
    "branch_of",
    "check_character",
    "content_hash",
    "create_lead",
    "default_mapper",
    "enterprise_id",
    "export_training_events",
    "get_lead",
    "import_file",
    "is_valid_credit_code",
    "iter_events",
    "lead_events",
    "list_leads",
    "load_ashare_corpus",
    "load_demo_enterprises",
    "map_headers",
    "outcome_label",
    "parse_enterprise_jsonl",
    "parse_products",
    "read_enterprises",
    "same_firm",
    "scoped_id",
    "update_lead",
    "upgrade",
    "validate_credit_code",
    "write_rejects",
]
