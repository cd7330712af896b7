"""Enterprises: read, search by name, bulk upsert from a CRM (JSON or an uploaded CSV / XLSX), delete.

A tenant writes only its own private rows (stored as ``{tenant}:{id}``); the shared corpus is read-only to it.
Every change is committed to the store before the answer; the fitted index takes it in without a rebuild
(re-map, re-embed, replace) on the index refresher's thread, within about a second. Writes answer at once with
``index: "pending"``; ``?wait=N`` waits up to N seconds for ``index: "updated"`` (read-your-writes).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from matcher.knowledge.geo import province_short
from matcher.records import Enterprise
from matcher.store.credit_code import validate_credit_code
from matcher.store.importer import enterprise_id as derive_id
from matcher.store.importer import import_file
from matcher.text import clean_text, normalize_company_name
from service.api.deps import ApiError, ServiceDep, TenantDep
from service.api.routes._common import enterprise_or_404
from service.api.schemas import EnterpriseBrief, EnterpriseIn, ImportIssue, ImportResult, UpsertResult

router = APIRouter(prefix="/enterprises", tags=["enterprises 企业"])

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


@router.get("/{enterprise_id}", response_model=Enterprise, summary="企业详情 One enterprise")
def get_enterprise(enterprise_id: str, tenant: TenantDep, svc: ServiceDep) -> Enterprise:
    return enterprise_or_404(svc.store, enterprise_id, tenant)


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
    ent = Enterprise(
        **item.model_dump(exclude={"id", "name", "province"}),
        id=eid,
        name=name,
        province=province,
        source="api",
    )
    ent.links = svc.mapper.map(ent)
    return ent


@router.post(
    "", response_model=UpsertResult, summary="批量写入企业 Bulk upsert the tenant's enterprises (JSON)"
)
def upsert_enterprises(
    tenant: TenantDep,
    svc: ServiceDep,
    items: Annotated[list[EnterpriseIn], Body(max_length=MAX_BATCH)],
    wait: WaitQuery = 0.0,
) -> UpsertResult:
    """Insert or update up to 1000 profiles; the same 统一社会信用代码 (else name + province, else id) is the
    same enterprise. Rows are the tenant's own; the shared corpus is never changed.

    The answer comes once the rows are stored (`index: "pending"`); recommendations include them about a
    second later. With `?wait=N` the answer waits up to N seconds for `index: "updated"`."""
    if not items:
        raise ApiError(
            422, "empty_batch", "企业列表为空 (expected at least one enterprise)", field="body", value=[]
        )
    ents = [_to_enterprise(i, item, svc) for i, item in enumerate(items)]
    summary = svc.store.upsert_enterprises(ents, tenant=tenant)
    index = svc.refresh(summary.changed_ids, tenant, wait=wait)
    return UpsertResult(
        inserted=summary.inserted,
        updated=summary.updated,
        unchanged=summary.unchanged,
        ids=summary.ids,
        changed_ids=summary.changed_ids,
        index=index,
    )


@router.post(
    "/import",
    response_model=ImportResult,
    summary="上传企业名单 Import an uploaded CSV / XLSX / JSONL (same rules as `chainmatch store import`)",
)
async def import_enterprises(
    tenant: TenantDep,
    svc: ServiceDep,
    file: Annotated[UploadFile, File(description="a .csv / .tsv / .xlsx / .jsonl enterprise list")],
    atomic: Annotated[bool, Form(description="reject the whole file when any row is rejected")] = True,
    wait: WaitQuery = 0.0,
) -> ImportResult:
    """Rows that fail validation are reported with row number, field and reason (the CLI's reject report)."""
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
    index = "unchanged"
    if report.changed_ids:
        index = await run_in_threadpool(svc.refresh, report.changed_ids, tenant, wait)

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
    svc.store.delete_enterprise(ent.id, tenant)
    svc.refresh([ent.id], tenant, wait=DELETE_WAIT_S)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
