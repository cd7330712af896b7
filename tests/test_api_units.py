"""Service building blocks on real components: hashed API keys in a real SQLite store, the token bucket,
the shortlist export (formula injection), the lead workflow and its feedback events."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from openpyxl import load_workbook

from matcher.errors import InvalidRequestError
from matcher.store.feedback import export_training_events
from matcher.store.lead_store import (
    InvalidTransitionError,
    LeadStatus,
    UnknownLeadError,
    create_lead,
    lead_events,
    list_leads,
    update_lead,
)
from matcher.store.store import Store
from service.api.export import HEADERS, ShortlistRow, escape_cell, to_csv, to_xlsx
from service.api.ratelimit import RateLimiter, TokenBucket
from service.api.security import (
    count_active_keys,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'svc.db'}")
    yield s
    s.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- API keys -----------------------------------------------------------------------------------------------------


def test_api_key_is_never_stored_in_plaintext(store: Store, tmp_path: Path):
    meta, key = create_api_key(store, "acme", "crm")
    secret = key.split("_", 2)[2]
    raw = (tmp_path / "svc.db").read_bytes()
    assert secret.encode() not in raw
    with sqlite3.connect(tmp_path / "svc.db") as conn:
        salt, digest = conn.execute("select salt, key_hash from api_keys where id = ?", (meta.id,)).fetchone()
    assert len(salt) == 32 and len(digest) == 64 and secret not in digest


def test_api_key_verifies_only_with_the_exact_secret(store: Store):
    meta, key = create_api_key(store, "acme")
    found = verify_api_key(store, key)
    assert found is not None and found.tenant == "acme" and found.id == meta.id
    assert verify_api_key(store, key[:-2] + ("AA" if not key.endswith("AA") else "BB")) is None
    assert verify_api_key(store, "cmk_000000000000_" + key.split("_", 2)[2]) is None
    assert verify_api_key(store, "") is None
    assert verify_api_key(store, None) is None


def test_two_keys_with_the_same_secret_part_hash_differently(store: Store):
    a, _ = create_api_key(store, "acme")
    b, _ = create_api_key(store, "acme")
    with store.transaction() as session:
        from service.api.security import ApiKeyRow

        salts = {session.get(ApiKeyRow, a.id).salt, session.get(ApiKeyRow, b.id).salt}
    assert len(salts) == 2


def test_revoked_key_stops_working_and_is_listed_as_revoked(store: Store):
    meta, key = create_api_key(store, "acme")
    assert count_active_keys(store) == 1
    revoke_api_key(store, meta.id)
    assert verify_api_key(store, key) is None
    assert count_active_keys(store) == 0
    assert [k.active for k in list_api_keys(store, "acme")] == [False]


def test_api_key_needs_a_valid_tenant(store: Store):
    with pytest.raises(InvalidRequestError):
        create_api_key(store, "bad:tenant")


# --- rate limiting ------------------------------------------------------------------------------------------------


def test_token_bucket_allows_the_burst_then_asks_to_wait():
    clock = FakeClock()
    bucket = TokenBucket(capacity=3, rate=1.0, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(1.0)
    clock.now += 1.0
    assert bucket.take() == 0.0


def test_rate_limiter_is_per_key_and_reports_whole_seconds():
    clock = FakeClock()
    limiter = RateLimiter(per_minute=2, clock=clock)
    assert limiter.check("a") == 0 and limiter.check("a") == 0
    assert limiter.check("a") == 30  # 2/min refills one token every 30 s
    assert limiter.check("b") == 0
    clock.now += 30
    assert limiter.check("a") == 0


def test_rate_limiter_disabled_with_zero():
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.check("a") == 0 for _ in range(1000))


# --- export -------------------------------------------------------------------------------------------------------


EVIL = ['=HYPERLINK("http://x","点我")', "+1+2", "-2+3", "@SUM(A1)", "\tTAB", "正常企业"]


def _rows() -> list[ShortlistRow]:
    return [
        ShortlistRow(
            rank=i + 1,
            name=name,
            province="江苏",
            city="=cmd|' /C calc'!A0",
            link="铝棒",
            products=["-铝棒"],
            evidence_strength="strong",
            score=0.5,
            reasons=["@理由"],
            status="线索",
            note="+备注",
        )
        for i, name in enumerate(EVIL)
    ]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@x", "\t=1", "\r=1"])
def test_escape_cell_prefixes_formula_starts(text: str):
    assert escape_cell(text) == "'" + text


def test_escape_cell_leaves_plain_text():
    assert escape_cell("新疆众和股份有限公司") == "新疆众和股份有限公司"


def test_xlsx_export_has_chinese_headers_and_no_formula_cells():
    wb = load_workbook(io.BytesIO(to_xlsx(_rows(), title="玛纳斯县[招商]清单")))
    ws = wb.active
    assert [c.value for c in ws[1]] == list(HEADERS)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str):
                assert cell.data_type == "s"  # typed text: never evaluated, and no visible leading quote
    names = [ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)]
    assert names[0] == EVIL[0] and names[-1] == "正常企业"
    assert ws.cell(row=2, column=9).value == "强"


def test_csv_export_is_utf8_bom_with_escaped_cells():
    data = to_csv(_rows())
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(HEADERS)
    for row in rows[1:]:
        for value in row:
            assert not value or value[0] not in "=+-@\t\r"
    assert rows[1][1] == "'" + EVIL[0]


# --- leads and feedback -------------------------------------------------------------------------------------------


def _lead(store: Store, tenant: str = "acme", enterprise: str = "e1"):
    return create_lead(
        store,
        tenant,
        region_id="manas",
        chain_id="aluminium",
        link_id="aluminium_rod",
        enterprise_id=enterprise,
        enterprise_name="某铝业",
        context={"rank": 2, "score": 0.7, "features": {"dense": 0.5}, "gap_type": "短链"},
        actor="crm",
    )


def test_lead_moves_through_the_workflow_and_keeps_every_event(store: Store):
    lead, created = _lead(store)
    assert created and lead.status is LeadStatus.LEAD
    for nxt in (LeadStatus.CONTACTED, LeadStatus.VISITED, LeadStatus.SIGNED):
        lead = update_lead(store, "acme", lead.id, status=nxt, note=f"到了{nxt.value}")
    assert lead.status is LeadStatus.SIGNED and lead.allowed_next == []
    events = lead_events(store, "acme", lead.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, LeadStatus.LEAD),
        (LeadStatus.LEAD, LeadStatus.CONTACTED),
        (LeadStatus.CONTACTED, LeadStatus.VISITED),
        (LeadStatus.VISITED, LeadStatus.SIGNED),
    ]


def test_shortlisting_the_same_candidate_twice_returns_the_existing_lead(store: Store):
    first, _ = _lead(store)
    again, created = _lead(store)
    assert not created and again.id == first.id
    assert len(lead_events(store, "acme")) == 1


def test_invalid_transition_names_the_allowed_statuses(store: Store):
    lead, _ = _lead(store)
    with pytest.raises(InvalidTransitionError) as info:
        update_lead(store, "acme", lead.id, status=LeadStatus.SIGNED)
    assert info.value.allowed == (LeadStatus.CONTACTED, LeadStatus.DROPPED)
    assert "已接触" in str(info.value)


def test_abandoning_needs_a_reason_and_can_be_reopened(store: Store):
    lead, _ = _lead(store)
    with pytest.raises(InvalidRequestError):
        update_lead(store, "acme", lead.id, status=LeadStatus.DROPPED)
    dropped = update_lead(store, "acme", lead.id, status=LeadStatus.DROPPED, reason="企业无投资计划")
    assert dropped.reason == "企业无投资计划" and dropped.allowed_next == [LeadStatus.LEAD]
    reopened = update_lead(store, "acme", lead.id, status=LeadStatus.LEAD)
    assert reopened.status is LeadStatus.LEAD and reopened.reason == ""


def test_leads_are_invisible_to_other_tenants(store: Store):
    lead, _ = _lead(store)
    with pytest.raises(UnknownLeadError):
        update_lead(store, "other", lead.id, status=LeadStatus.CONTACTED)
    with pytest.raises(UnknownLeadError):
        lead_events(store, "other", lead.id)
    assert list_leads(store, "other") == []
    assert export_training_events(store, "other") == []


def test_training_events_carry_labels_features_and_the_final_flag(store: Store):
    won, _ = _lead(store, enterprise="e1")
    lost, _ = _lead(store, enterprise="e2")
    for nxt in (LeadStatus.CONTACTED, LeadStatus.VISITED, LeadStatus.SIGNED):
        update_lead(store, "acme", won.id, status=nxt)
    update_lead(store, "acme", lost.id, status=LeadStatus.DROPPED, reason="产能不匹配")
    _lead(store, tenant="beta", enterprise="e3")
    events = export_training_events(store, "acme")
    assert len(events) == 6
    finals = {e["enterprise_id"]: e for e in events if e["final"]}
    assert finals["e1"]["label"] == 1 and finals["e1"]["grade"] == 4
    assert finals["e2"]["label"] == 0 and finals["e2"]["reason"] == "产能不匹配"
    assert all(e["features"] == {"dense": 0.5} and e["gap_type"] == "短链" for e in events)
    assert {e["tenant"] for e in export_training_events(store)} == {"acme", "beta"}
