"""Expansion signals: bulk write of a tenant's events (``POST /v1/signals``) and a firm's timeline
(``GET /v1/enterprises/{id}/signals``: shared + the tenant's own events of the firm and its group, oldest first)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field, ValidationError

from matcher.knowledge.geo import province_short
from matcher.store.signal_import import map_product_link
from matcher.store.signals import SignalEvent, SignalSource, signals_of, upsert_signals
from matcher.text import clean_text
from service.api.deps import ApiError, ServiceDep, TenantDep
from service.api.routes._common import enterprise_or_404

logger = logging.getLogger(__name__)
router = APIRouter(tags=["signals 扩张信号"])

MAX_BATCH = 5000


class SignalIn(BaseModel):
    """One event as a CRM or a feed sends it; ``enterprise_id`` (else ``firm``) names the firm."""

    enterprise_id: str | None = None
    firm: str | None = Field(default=None, max_length=400)
    group: str | None = Field(default=None, max_length=400)
    date: date
    kind: str = Field(description="签约, 开工, 投产, 募投项目, 定增, 对外投资, 扩产公告, 新设子公司, 收购, 考察")
    product: str = Field(default="", max_length=400)
    link_id: str | None = None
    province: str | None = None
    region: str = Field(default="", max_length=200)
    amount: float | None = Field(default=None, ge=0, description="万元")
    confidence: float = Field(default=0.8, ge=0, le=1)
    url: str = Field(default="", max_length=2000)
    document: str = Field(default="", max_length=400)
    title: str = Field(default="", max_length=400)


class SignalsResult(BaseModel):
    """Events new to the store, input items merged into an existing event as a new source, repeats."""

    inserted: int
    merged: int
    unchanged: int


def _event(i: int, item: SignalIn, tenant: str, svc: ServiceDep) -> SignalEvent:
    if not item.url and not item.document:
        raise ApiError(422, "missing_source", "缺少来源 (every event needs a url or a document)",
                       field=f"[{i}].url", value="")  # fmt: skip
    enterprise_id, firm = None, clean_text(item.firm or "")
    if item.enterprise_id:
        ent = enterprise_or_404(svc.store, item.enterprise_id, tenant)
        enterprise_id, firm = ent.id, firm or ent.name
    if not firm:
        message = "缺少企业 (expected enterprise_id or firm)"
        raise ApiError(422, "missing_firm", message, field=f"[{i}].firm", value=None)
    link_id = item.link_id
    if link_id is None and item.product:
        link_id = map_product_link(svc.mapper, clean_text(item.product))
    try:
        return SignalEvent(
            enterprise_id=enterprise_id,
            firm=firm,
            group=item.group,
            day=item.date,
            kind=item.kind,
            product=clean_text(item.product),
            link_id=link_id,
            province=province_short(item.province) if item.province else None,
            region=clean_text(item.region),
            amount=item.amount,
            confidence=item.confidence,
            origin="api",
            sources=[SignalSource(url=item.url, document=item.document, title=clean_text(item.title))],
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "-"
        raise ApiError(422, "invalid_signal", err["msg"], field=f"[{i}].{field}", value=err.get("input")) from None


@router.post("/signals", response_model=SignalsResult, summary="批量写入扩张信号 Bulk write the tenant's events")
def post_signals(
    tenant: TenantDep,
    svc: ServiceDep,
    items: Annotated[list[SignalIn], Body(max_length=MAX_BATCH)],
) -> SignalsResult:
    """Store up to 5000 events as the tenant's own; one bad item rejects the batch (422 naming its index, field
    and reason). The same event (firm, kind, link, province, month) from several sources is stored once."""
    if not items:
        raise ApiError(422, "empty_batch", "事件列表为空 (expected at least one event)", field="body", value=[])
    events = [_event(i, item, tenant, svc) for i, item in enumerate(items)]
    s = upsert_signals(svc.store, events, tenant)
    return SignalsResult(inserted=s.inserted, merged=s.merged, unchanged=s.unchanged)


@router.get(
    "/enterprises/{enterprise_id}/signals",
    response_model=list[SignalEvent],
    summary="企业扩张信号时间线 A firm's events",
)
def get_signals(enterprise_id: str, tenant: TenantDep, svc: ServiceDep) -> list[SignalEvent]:
    """The firm's (and its group's) events visible to the tenant, oldest first, each with its sources."""
    ent = enterprise_or_404(svc.store, enterprise_id, tenant)
    groups = [ent.parent_group] if ent.parent_group else []
    return signals_of(svc.store, [ent.id], tenant, groups=groups)
