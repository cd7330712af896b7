"""Bad input, some of it at scale, against a real ``chainmatch serve`` (uvicorn on a free 127.0.0.1 port).

- bodies over the upload limit are refused with 413 whether they declare their length or stream it chunked,
  and the server never holds them in memory;
- JSON nested 10,000 levels deep is a 422 (the body) or a rejected row (a JSON-lines upload), never a 500;
- bytes that are not UTF-8 get a clear 422, a binary "CSV" a clear 422 naming the missing column;
- SQL-looking text is stored and found verbatim, and never widens a search;
- exported shortlists escape every cell a spreadsheet would run as a formula (= + - @);
- a large register export with 5% broken rows imports the good rows (``chainmatch import --no-atomic``) with
  its peak memory measured (1M rows in the slow variant).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from matcher.records import Enterprise
from matcher.store.store import Store
from service.api.security import create_api_key
from service.cli.bench_load import REPO, LocalServer
from service.cli.store import write_synthetic_export

pytest_plugins = ["store_backends"]  # store / store_url / open_store on SQLite and PostgreSQL

logger = logging.getLogger(__name__)

MB = 1024 * 1024
LIMIT_MB = 2
NESTED = 10_000
GAP = {"chain": "aluminium", "link": "aluminium_rod"}


class Server:
    """A started server and a tenant's API key."""

    def __init__(self, root: Path, limit_mb: int | None) -> None:
        env = {"CHAINMATCH_MAX_UPLOAD_MB": str(limit_mb)} if limit_mb else {}
        self.proc = LocalServer(root / "data", root / "cache", env=env).start()
        with Store(f"sqlite:///{root / 'data' / 'chainmatch.db'}") as st:
            _, self.key = create_api_key(st, "badinput", "tests")
        self.http = httpx.Client(base_url=self.proc.url, headers={"X-API-Key": self.key}, timeout=60)

    def close(self) -> None:
        self.http.close()
        self.proc.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("badinput"), LIMIT_MB)
    yield s
    s.close()


def _error(resp: httpx.Response) -> dict:
    return resp.json()["error"]


# --- bodies over the limit ----------------------------------------------------------------------------------


def _head(srv: Server, path: str, content_type: str, framing: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {srv.key}\r\n"
        f"Content-Type: {content_type}\r\n{framing}\r\n\r\n"
    ).encode()


def _status_of(sock: socket.socket, timeout: float = 30) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        part = sock.recv(4096)
        if not part:
            break
        data += part
    return int(data.split(b" ", 2)[1])


MULTIPART = "multipart/form-data; boundary=cmXYZ"
PREAMBLE = (
    b'--cmXYZ\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\n"
)
CSV_CHUNK = ("企业名称,所属省份,主营产品\n" + "测试上传企业有限公司,江苏,铝棒\n" * 9000).encode()[
    : 256 * 1024
]


def _stream_chunked(srv: Server, path: str, content_type: str, total: int) -> tuple[int, int]:
    """POST ``total`` bytes with chunked transfer encoding, stopping as soon as the server answers.

    Returns (HTTP status, bytes sent before the answer)."""
    with socket.create_connection(("127.0.0.1", srv.proc.port)) as sock:
        sock.sendall(_head(srv, path, content_type, "Transfer-Encoding: chunked"))
        sent = 0
        if content_type.startswith("multipart"):
            sock.sendall(b"%x\r\n%s\r\n" % (len(PREAMBLE), PREAMBLE))
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CSV_CHUNK), CSV_CHUNK))
                sent += len(CSV_CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        return _status_of(sock), sent


@pytest.mark.parametrize("path", ["/v1/enterprises/import", "/v1/enterprises"])
def test_declared_200mb_body_is_refused_with_413_before_it_is_sent(server: Server, path: str):
    rss = server.proc.rss_mb()
    with socket.create_connection(("127.0.0.1", server.proc.port)) as sock:
        sock.sendall(_head(server, path, MULTIPART, f"Content-Length: {200 * MB}"))
        sock.sendall(PREAMBLE + CSV_CHUNK)  # 0.1% of what the header promised
        t0 = time.monotonic()
        assert _status_of(sock, timeout=10) == 413
        assert time.monotonic() - t0 < 10  # answered without waiting for the promised 200 MB
    assert server.proc.rss_mb() - rss < 32


@pytest.mark.parametrize(
    ("path", "content_type"), [("/v1/enterprises/import", MULTIPART), ("/v1/enterprises", "application/json")]
)
def test_chunked_200mb_body_is_cut_off_at_the_limit(server: Server, path: str, content_type: str):
    rss = server.proc.rss_mb()
    status, sent = _stream_chunked(server, path, content_type, 200 * MB)
    assert status == 413
    assert LIMIT_MB * MB <= sent < 40 * MB  # the limit, plus what the socket buffers held when it answered
    assert server.proc.rss_mb() - rss < 48
    assert server.http.get("/healthz").status_code == 200


@pytest.mark.slow
def test_200mb_upload_against_the_default_50mb_limit_stays_out_of_memory(tmp_path: Path):
    srv = Server(tmp_path, None)
    try:
        rss = srv.proc.rss_mb()
        status, sent = _stream_chunked(srv, "/v1/enterprises/import", MULTIPART, 200 * MB)
        assert status == 413 and 50 * MB < sent < 100 * MB
        growth = srv.proc.rss_mb() - rss
        assert growth < 64, f"server RSS grew {growth:.0f} MB while refusing a 200 MB upload"
    finally:
        srv.close()


# --- nesting, encodings, garbage ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/enterprises", "/v1/recommendations"])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_json_nested_10k_levels_is_422_not_500(server: Server, path: str, shape: str):
    body = "[" * NESTED + "]" * NESTED if shape == "array" else '{"a":' * NESTED + "1" + "}" * NESTED
    resp = server.http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and _error(resp)["code"] == "json_too_deep"
    assert server.http.get("/healthz").status_code == 200


def test_json_nested_within_the_parser_limit_is_a_validation_error(server: Server):
    extra = {"deep": json.loads("[" * 500 + "]" * 500)}
    resp = server.http.post("/v1/enterprises", json=[{"name": "嵌套测试有限公司", "extra": extra}])
    assert resp.status_code == 422 and _error(resp)["code"] == "validation_error"
    assert _error(resp)["field"].startswith("[0].extra")


def test_a_jsonl_line_nested_10k_levels_is_a_rejected_row(server: Server):
    good = json.dumps({"企业名称": "正常行企业有限公司", "所属省份": "江苏"}, ensure_ascii=False)
    deep = '{"企业名称": "深层嵌套企业有限公司", "extra": ' + "[" * NESTED + "]" * NESTED + "}"
    files = {"file": ("deep.jsonl", f"{good}\n{deep}\n".encode(), "application/x-ndjson")}
    resp = server.http.post("/v1/enterprises/import", files=files, data={"atomic": "false"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["inserted"] == 1 and body["rejected"] == 1 and body["committed"]
    assert body["rejects"][0]["row"] == 2 and "nested too deeply" in body["rejects"][0]["reason"]


@pytest.mark.parametrize("encoding", ["gbk", "latin-1"])
def test_json_body_that_is_not_utf8_is_a_clear_422(server: Server, encoding: str):
    body = json.dumps(
        [{"name": "编码测试有限公司" if encoding == "gbk" else "Société Générale"}], ensure_ascii=False
    )
    resp = server.http.post(
        "/v1/enterprises", content=body.encode(encoding), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert _error(resp)["code"] == "body_not_utf8" and "UTF-8" in _error(resp)["message"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_binary_garbage_upload_is_a_clear_422(server: Server, suffix: str):
    garbage = random.Random(7).randbytes(20_000)
    resp = server.http.post(
        "/v1/enterprises/import", files={"file": (f"garbage{suffix}", garbage, "text/plain")}
    )
    assert resp.status_code == 422, resp.text
    err = _error(resp)
    assert err["code"] == "import_file_invalid"
    assert "not a readable .xlsx" in err["message"] if suffix == ".xlsx" else "企业名称" in err["message"]


def test_undecodable_bytes_in_a_query_or_path_are_not_a_server_error(server: Server):
    resp = server.http.get("/v1/enterprises?q=%FF%FE")  # refused by name, never read as a wildcard
    assert resp.status_code == 422 and _error(resp)["field"] == "q"
    resp = server.http.get("/v1/enterprises/%FF%FE")
    assert resp.status_code == 404 and _error(resp)["code"] == "unknown_enterprise"


# --- SQL-looking text ---------------------------------------------------------------------------------------

SQLISH = [
    "Robert'); DROP TABLE enterprises;--有限公司",
    "1' OR '1'='1 科技有限公司",
    'x"; DELETE FROM api_keys; --有限公司',
    "100%_通配_有限公司",
]
WILDCARD_PROBES = ("' OR 1=1 --", "%有%限%", "_限公司", "%' --")
"""Searches that match no name literally but would match every name if read as SQL or LIKE patterns."""


def test_sql_looking_strings_are_stored_and_found_verbatim_over_http(server: Server):
    before = len(server.http.get("/v1/enterprises", params={"q": "有限公司", "limit": 200}).json())
    items = [
        {"id": f"sql-{i}", "name": n, "province": "江苏", "scope": f"{n}; SELECT * FROM enterprises"}
        for i, n in enumerate(SQLISH)
    ]
    resp = server.http.post("/v1/enterprises", json=items)
    assert resp.status_code == 200, resp.text
    for i, name in enumerate(SQLISH):
        got = server.http.get(f"/v1/enterprises/sql-{i}").json()
        assert got["name"] == name and got["scope"] == f"{name}; SELECT * FROM enterprises"
        assert [e["id"] for e in server.http.get("/v1/enterprises", params={"q": name}).json()][0].endswith(
            f"sql-{i}"
        )
    for probe in WILDCARD_PROBES:
        assert server.http.get("/v1/enterprises", params={"q": probe}).json() == [], probe
    after = server.http.get("/v1/enterprises", params={"q": "有限公司", "limit": 200}).json()
    assert len(after) == min(200, before + len(SQLISH))  # nothing dropped, nothing widened
    assert server.http.get("/v1/regions").status_code == 200  # the API-key table still answers


def test_sql_looking_strings_round_trip_through_the_store(store: Store):
    ents = [Enterprise(id=f"q{i}", name=n, province="江苏", scope=n) for i, n in enumerate(SQLISH)]
    store.upsert_enterprises(ents, tenant="acme")
    for i, name in enumerate(SQLISH):
        assert store.get_enterprise(f"acme:q{i}", "acme").name == name
        assert store.find_enterprises(name, "acme")[0].id == f"acme:q{i}"
    for probe in WILDCARD_PROBES:
        assert store.find_enterprises(probe, "acme") == [], probe
    assert store.count_enterprises("acme") == len(SQLISH)


# --- formula injection in exports ---------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example","点我")有限公司',
    "+cmd|' /C calc'!A0有限公司",
    "-2+3+cmd|' /C calc'!A0有限公司",
    "@SUM(1+1)*cmd|' /C calc'!A0有限公司",
]


def test_shortlist_exports_escape_formula_cells(server: Server):
    items = [
        {
            "id": f"fx-{i}",
            "name": n,
            "province": "江苏",
            "city": "常州市",
            "products": [{"name": "6063铝棒", "share": 0.9}],
        }
        for i, n in enumerate(FORMULAS)
    ]
    assert server.http.post("/v1/enterprises", json=items).status_code == 200
    lead = server.http.post(
        "/v1/leads", json={"region": "manas", **GAP, "enterprise_id": "fx-0", "note": "=1+1 @备注 -3"}
    )
    assert lead.status_code == 201, lead.text
    ids = [f"fx-{i}" for i in range(len(FORMULAS))]
    body = {"enterprise_ids": ids, **GAP}

    text = server.http.post("/v1/regions/manas/shortlist.csv", json=body).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [r[1] for r in rows] == ["'" + n for n in FORMULAS]
    assert rows[0][12] == "'=1+1 @备注 -3"
    for row in rows:
        assert not any(cell[:1] in ("=", "+", "-", "@") for cell in row if cell), row

    xlsx = server.http.post("/v1/regions/manas/shortlist.xlsx", json=body)
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    cells = [c for row in ws.iter_rows(min_row=2) for c in row if c.value is not None]
    # XLSX: typed text cells, shown as written (no visible quote) and never formulas
    assert [ws.cell(row=r, column=2).value for r in range(2, 2 + len(FORMULAS))] == list(FORMULAS)
    assert all(c.data_type != "f" for c in cells)
    assert all(c.data_type == "s" for c in cells if isinstance(c.value, str))


# --- a large export with broken rows ------------------------------------------------------------------------

BREAKS = ("bad credit code", "empty name", "extra field", "name too long", "GBK bytes in a UTF-8 file")


def write_broken_export(path: Path, rows: int, every: int = 20, seed: int = 0) -> int:
    """A synthetic register export in which every ``every``-th row is broken in one of :data:`BREAKS` ways
    (in turn); returns how many rows are broken."""
    clean = path.with_suffix(".clean.csv")
    write_synthetic_export(clean, rows, seed)
    broken = 0
    buf = io.StringIO()
    w = csv.writer(buf)
    with clean.open(encoding="utf-8", newline="") as src, path.open("wb") as out:
        reader = csv.reader(src)
        w.writerow(next(reader))
        for i, row in enumerate(reader):
            kind = (i // every) % len(BREAKS) if i % every == every - 1 else None
            if kind == 0:
                row[1] = "91110000MA00000000"  # fails the GB 32100-2015 check character
            elif kind == 1:
                row[0] = ""
            elif kind == 2:
                row.append("多余的列")
            elif kind == 3:
                row[0] += "有" * 250
            w.writerow(row)
            line = buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
            if kind == 4:
                line = line.replace(row[6].encode("utf-8"), row[6].encode("gbk"), 1)  # the city cell
            out.write(line)
            broken += kind is not None
    clean.unlink()
    return broken


def _import_peak_rss(path: Path, root: Path, cap_gb: float) -> tuple[dict, float, float]:
    """Run ``chainmatch import --no-atomic --json`` in a child under an address-space cap.

    Returns (report, peak RSS in MB, seconds)."""
    env = {
        **os.environ,
        "CHAINMATCH_DATA_DIR": str(root / "data"),
        "CHAINMATCH_CACHE_DIR": str(root / "cache"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("CHAINMATCH_DATABASE_URL", None)
    cap = int(cap_gb * 1024**3)

    def limit() -> None:  # a runaway import fails inside its cap instead of starving the machine
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--quiet", "import", str(path), "--no-atomic", "--json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    # read both pipes on threads, then reap this child alone with wait4: its own peak RSS, whatever ran before
    import threading

    out: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=name, f=f: out.__setitem__(n, f.read()))
        for name, f in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in readers:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    peak = usage.ru_maxrss
    assert proc.returncode == 0, out["stderr"][-3000:]
    return json.loads(out["stdout"]), peak / 1024, seconds


def _check_import(report: dict, rows: int, broken: int) -> None:
    assert report["rows"] == rows and report["committed"]
    assert report["rejected"] == broken and report["inserted"] == rows - broken
    reasons = " ".join(r["reason"] for r in report["rejects"])
    for needle in ("credit code", "empty", "fields", "too long", "utf-8"):
        assert needle in reasons.lower(), needle


def test_export_with_5_percent_broken_rows_imports_the_rest(tmp_path: Path):
    rows = 2000
    broken = write_broken_export(tmp_path / "export.csv", rows)
    assert broken == rows // 20
    report, peak_mb, _ = _import_peak_rss(tmp_path / "export.csv", tmp_path, cap_gb=4)
    _check_import(report, rows, broken)
    assert peak_mb < 1024


@pytest.mark.slow
def test_million_row_export_with_5_percent_broken_rows(tmp_path: Path):
    rows = 1_000_000
    broken = write_broken_export(tmp_path / "export.csv", rows)
    size_mb = (tmp_path / "export.csv").stat().st_size / 1e6
    report, peak_mb, seconds = _import_peak_rss(tmp_path / "export.csv", tmp_path, cap_gb=12)
    _check_import(report, rows, broken)
    logger.info("1M-row import: %.0f MB file, %.0f s, peak RSS %.0f MB", size_mb, seconds, peak_mb)
