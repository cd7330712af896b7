"""Enterprises: read, search by name, bulk upsert from a CRM (JSON or an uploaded CSV / XLSX), delete.

A tenant writes only its own private rows (stored as ``{tenant}:{id}``); the shared corpus is read-only to it.
Every change is committed to the store before the answer; the fitted index takes it in without a rebuild
(re-map, re-embed, replace) on the index refresher's thread, within about a second. Writes answer at once with
``index: "pending"``; ``?wait=N`` waits up to N seconds for ``index: "updated"`` (read-your-writes).
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from matcher.errors import ChainMatchError
from matcher.knowledge.geo import province_short
from matcher.records import Enterprise
from matcher.store.credit_code import validate_credit_code
from matcher.store.importer import enterprise_id as derive_id
from matcher.store.importer import import_file
from matcher.text import clean_text, normalize_company_name
from service.api.deps import ApiError, ServiceDep, TenantDep
from service.api.routes._common import enterprise_or_404
from service.api.schemas import (
    EnterpriseBrief,
    EnterpriseIn,
    EnterpriseRecord,
    ImportIssue,
    ImportResult,
    ItemError,
    UpsertItem,
    UpsertResult,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/enterprises", tags=["enterprises 企业"])
_Item = Annotated[EnterpriseIn | dict[str, Any], Field(union_mode="left_to_right")]
"""A body item: a valid profile, or any object (checked item by item, so on_error=skip can report it)."""

MAX_BATCH = 1000
DELETE_WAIT_S = 30.0
"""A delete waits for the index: a deleted firm must not be recommended afterwards."""
WaitQuery = Annotated[
    float,
    Query(
        ge=0,
        le=30,
        description="seconds to wait until the index serves the change (0: answer at once, index 'pending')",
    ),
]
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".jsonl", ".ndjson")
_CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^\w.\-]+")


@router.get("", response_model=list[EnterpriseBrief], summary="按名称搜索企业 Search enterprises by name")
def search_enterprises(
    tenant: TenantDep,
    svc: ServiceDep,
    q: str = Query(min_length=1, max_length=100, description="name, short name, credit code or stock code"),
    limit: int = Query(20, ge=1, le=200),
) -> list[EnterpriseBrief]:
    return [EnterpriseBrief.of(e) for e in svc.store.find_enterprises(q, tenant, limit=limit)]


@router.get("/{enterprise_id}", response_model=EnterpriseRecord, summary="企业详情 One enterprise")
def get_enterprise(enterprise_id: str, tenant: TenantDep, svc: ServiceDep) -> EnterpriseRecord:
    return EnterpriseRecord.of(enterprise_or_404(svc.store, enterprise_id, tenant))


def _to_enterprise(i: int, item: EnterpriseIn, svc: ServiceDep) -> Enterprise:
    if item.credit_code:
        try:
            validate_credit_code(item.credit_code)
        except ValueError as exc:
            raise ApiError(
                422,
                "invalid_credit_code",
                f"统一社会信用代码无效 (invalid credit code: {exc})",
                field=f"[{i}].credit_code",
                value=item.credit_code,
            ) from None
    name = clean_text(item.name)
    province = province_short(item.province) or (clean_text(item.province) if item.province else None)
    eid = item.id or derive_id(item.credit_code, normalize_company_name(name), province)
    sites = [x for x in dict.fromkeys(clean_text(x) for x in item.sites) if x]
    ent = Enterprise(
        **item.model_dump(exclude={"id", "name", "province", "sites", "extra"}),
        id=eid,
        name=name,
        province=province,
        source="api",
        extra={**item.extra, **({"sites": sites} if sites else {})},
    )
    ent.links = svc.mapper.map(ent)
    return ent


@router.post(
    "", response_model=UpsertResult, summary="批量写入企业 Bulk upsert the tenant's enterprises (JSON)"
)
def upsert_enterprises(
    tenant: TenantDep,
    svc: ServiceDep,
    items: Annotated[
        list[_Item], Body(max_length=MAX_BATCH, description="enterprise profiles (EnterpriseIn)")
    ],
    wait: WaitQuery = 0.0,
    on_error: Annotated[
        Literal["atomic", "skip"],
        Query(
            description="atomic: any bad item rejects the batch (422); "
            "skip: store the good items, report the bad ones"
        ),
    ] = "atomic",
) -> UpsertResult:
    """Insert or update up to 1000 profiles; the same 统一社会信用代码 (else name + province, else id) is the
    same enterprise. Rows are the tenant's own; the shared corpus is never changed.

    `on_error=atomic` (default): one bad item rejects the whole batch with 422 naming its index, field and
    reason. `on_error=skip`: the good items are stored and `items` answers per input item its `id` or its
    `error` (field, reason); 422 when no item could be stored.

    The answer comes once the rows are stored (`index: "pending"`); recommendations include them about a
    second later. With `?wait=N` the answer waits up to N seconds for `index: "updated"`."""
    if not items:
        raise ApiError(
            422, "empty_batch", "企业列表为空 (expected at least one enterprise)", field="body", value=[]
        )
    if on_error == "skip":
        return _upsert_skipping(tenant, svc, items, wait)
    errors = [
        {**e, "loc": ("body", i, *e["loc"])}
        for i, item in enumerate(items)
        if not isinstance(item, EnterpriseIn)
        for e in _validation_errors(item)
    ]
    if errors:
        raise RequestValidationError(errors)
    ents = [_to_enterprise(i, item, svc) for i, item in enumerate(items)]  # type: ignore[arg-type]
    summary = svc.store.upsert_enterprises(ents, tenant=tenant)
    index = svc.refresh(summary.changed_ids, tenant, wait=wait, seqs=summary.change_seqs)
    return UpsertResult(
        inserted=summary.inserted,
        updated=summary.updated,
        unchanged=summary.unchanged,
        ids=summary.ids,
        changed_ids=summary.changed_ids,
        index=index,
        items=[UpsertItem(index=i, id=x) for i, x in enumerate(summary.ids)],
    )


def _validation_errors(item: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        EnterpriseIn.model_validate(item)
    except ValidationError as exc:
        return [dict(e) for e in exc.errors(include_url=False)]
    return []


def _item_error(field: str, reason: str, value: Any = None) -> ItemError:
    return ItemError(field=field or "item", reason=reason, value=None if value is None else str(value)[:200])


def _upsert_skipping(tenant: str, svc: ServiceDep, items: list[_Item], wait: float) -> UpsertResult:
    """``on_error=skip``: bad items are reported (index, field, reason), the good ones stored; a batch the
    store refuses is retried item by item so one refused row does not take the others with it."""
    results: dict[int, UpsertItem] = {}
    good: list[tuple[int, Enterprise]] = []
    for i, raw in enumerate(items):
        try:
            item = raw if isinstance(raw, EnterpriseIn) else EnterpriseIn.model_validate(raw)
            good.append((i, _to_enterprise(i, item, svc)))
        except ValidationError as exc:
            e = exc.errors(include_url=False)[0]
            field = ".".join(str(x) for x in e["loc"])
            results[i] = UpsertItem(index=i, error=_item_error(field, e["msg"], e.get("input")))
        except ApiError as exc:
            field = (exc.field or "").removeprefix(f"[{i}].")
            results[i] = UpsertItem(index=i, error=_item_error(field, exc.message, exc.value))
    inserted = updated = unchanged = 0
    changed: list[str] = []
    seqs: list[int] = []
    batches = [good] if good else []
    while batches:
        batch = batches.pop()
        try:
            summary = svc.store.upsert_enterprises([e for _, e in batch], tenant=tenant)
        except ChainMatchError as exc:
            if len(batch) == 1:  # the row the store refuses (a credit code already on another row …)
                i, ent = batch[0]
                field = getattr(exc, "field", None) or "item"
                results[i] = UpsertItem(index=i, error=_item_error(field, str(exc), ent.id))
                continue
            batches += [[x] for x in reversed(batch)]  # one by one: store what the store accepts
            continue
        inserted, updated, unchanged = (
            inserted + summary.inserted, updated + summary.updated, unchanged + summary.unchanged
        )
        changed += summary.changed_ids
        seqs += summary.change_seqs
        results.update({i: UpsertItem(index=i, id=x) for (i, _), x in zip(batch, summary.ids, strict=True)})
    ordered = [results[i] for i in range(len(items))]
    rejected = [r for r in ordered if r.error is not None]
    errors = [(r.index, r.error) for r in rejected if r.error is not None]
    for i, err in errors:
        logger.info("upsert item %d rejected: %s: %s", i, err.field, err.reason)
    if len(rejected) == len(items):
        raise ApiError(
            422,
            "all_items_rejected",
            f"全部 {len(items)} 条企业均被拒绝，未写入任何数据 (every item was rejected; nothing stored)",
            field=f"[{errors[0][0]}].{errors[0][1].field}",
            value=errors[0][1].value,
            details=[{"index": i, **err.model_dump()} for i, err in errors[:100]],
        )
    index = svc.refresh(changed, tenant, wait=wait, seqs=seqs)
    return UpsertResult(
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        ids=[r.id for r in ordered if r.id is not None],
        changed_ids=changed,
        index=index,
        rejected=len(rejected),
        items=ordered,
    )


@router.post(
    "/import",
    response_model=ImportResult,
    summary="上传企业名单 Import an uploaded CSV / XLSX / JSONL (same rules as `chainmatch import`)",
)
async def import_enterprises(
    tenant: TenantDep,
    svc: ServiceDep,
    file: Annotated[UploadFile, File(description="a .csv / .tsv / .xlsx / .jsonl enterprise list")],
    atomic: Annotated[bool, Form(description="reject the whole file when any row is rejected")] = True,
    wait: WaitQuery = 0.0,
) -> ImportResult:
    """Rows that fail validation are reported with row number, field and reason (the CLI's reject report).

    422 (`import_rejected`, the rejects in `details`) when nothing was written: an atomic import with rejected
    rows, or every row rejected."""
    filename = FilePath(file.filename or "upload.csv").name
    suffix = FilePath(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ApiError(
            422,
            "unsupported_file",
            f"不支持的文件类型 '{suffix or filename}' (unsupported file type)",
            field="file",
            value=filename,
            allowed=list(UPLOAD_SUFFIXES),
        )
    limit = svc.settings.max_upload_mb * 1024 * 1024
    safe = _SAFE_NAME.sub("_", FilePath(filename).stem)[:80] or "upload"
    with tempfile.TemporaryDirectory(prefix="chainmatch-upload-") as tmp:
        path = FilePath(tmp) / f"{safe}{suffix}"
        size = 0
        with path.open("wb") as fh:
            while chunk := await file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413,
                        "upload_too_large",
                        f"上传文件超过 {svc.settings.max_upload_mb} MB (upload too large)",
                        field="file",
                        value=filename,
                    )
                fh.write(chunk)
        report = await run_in_threadpool(
            import_file, path, svc.store, tenant, atomic, None, None, mapper=svc.mapper
        )
    stored = report.inserted + report.updated + report.unchanged
    if report.rejects and (not report.committed or not stored):
        why = "atomic import" if not report.committed else "every row rejected"
        raise ApiError(
            422,
            "import_rejected",
            f"{filename}: {report.rejected} 行被拒绝，未写入任何数据 ({why}: {report.rejected} rows rejected, "
            f"nothing written; first: {report.rejects[0]})",
            field="file",
            value=filename,
            details=[
                {"row": r.row, "field": r.field, "reason": r.reason, "value": str(r.value)[:200]}
                for r in report.rejects[:100]
            ],
        )
    index = "unchanged"
    if report.changed_ids:
        index = await run_in_threadpool(svc.refresh, report.changed_ids, tenant, wait, report.change_seqs)

    def issues(rows: list) -> list[ImportIssue]:
        return [
            ImportIssue(row=r.row, field=r.field, reason=r.reason, value=str(r.value)[:200]) for r in rows
        ]

    return ImportResult(
        filename=filename,
        format=report.format,
        encoding=report.encoding,
        rows=report.rows,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        duplicates=report.duplicates,
        rejected=report.rejected,
        committed=report.committed,
        rejects=issues(report.rejects[:1000]),
        warnings=issues(report.warnings[:1000]),
        changed_ids=report.changed_ids,
        index=index,
    )


@router.delete(
    "/{enterprise_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="删除企业 Delete the tenant's enterprise",
)
def delete_enterprise(enterprise_id: str, tenant: TenantDep, svc: ServiceDep) -> Response:
    """403 for a shared-corpus enterprise, 404 for an unknown (or another tenant's) one."""
    ent = enterprise_or_404(svc.store, enterprise_id, tenant)
    seqs = svc.store.delete_enterprise(ent.id, tenant)
    svc.refresh([ent.id], tenant, wait=DELETE_WAIT_S, seqs=seqs)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
