"""Issue 18 item 2: work stops when the client disconnects — a real uvicorn server, a raw socket closed mid-request."""

from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest
from api_support import Served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module):
    monkeypatch_module.setenv("CHAINMATCH_RATE_LIMIT_PER_MINUTE", "100000")
    s = Served(tmp_path_factory.mktemp("served"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _cancelled(served: Served) -> float:
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    m = re.search(r'chainmatch_cancelled_total\{route="region_recommendations"\} ([0-9.]+)', text)
    return float(m.group(1)) if m else 0.0


def test_a_region_shortlist_stops_when_the_client_hangs_up(served: Served):
    headers = {"X-API-Key": served.key}
    body = {"max_gaps": 50, "k": 50}
    t = time.perf_counter()
    full = httpx.post(f"{served.url}/v1/regions/changji/recommendations", json=body, headers=headers, timeout=120)
    whole = time.perf_counter() - t
    assert full.status_code == 200 and len(full.json()["shortlists"]) > 5
    assert _cancelled(served) == 0.0

    url = urlparse(served.url)
    payload = json.dumps(body).encode()
    raw = (
        f"POST /v1/regions/changji/recommendations HTTP/1.1\r\nHost: {url.hostname}\r\nX-API-Key: {served.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(raw)
        time.sleep(min(0.3, whole / 4))  # the server is inside the loop over gaps
    deadline = time.time() + 30
    while time.time() < deadline and _cancelled(served) == 0.0:
        time.sleep(0.2)
    assert _cancelled(served) == 1.0, served.log.read_text()[-2000:]
    logs = [json.loads(x) for x in served.log.read_text().splitlines() if x.startswith("{")]
    assert any("client gone" in x["message"] for x in logs)
    # the server is fine afterwards
    assert httpx.get(f"{served.url}/readyz", timeout=10).status_code == 200
