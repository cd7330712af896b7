"""Shared helpers for the service tests: one real app per test module (real SQLite store, real FAISS index over
the embedded demo corpus, hash embedder), fresh tenants with real API keys, and ``chainmatch serve`` run for
real (uvicorn in a subprocess)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from matcher.ranking.engine import Engine
from matcher.settings import Settings
from service.api.app import create_app
from service.api.security import create_api_key

REPO = Path(__file__).resolve().parents[1]


def make_settings(root: Path, **overrides) -> Settings:
    """Settings pointing at ``root`` (data + cache), with the hash embedder."""
    return Settings(data_dir=root / "data", cache_dir=root / "cache", embedder="hash", **overrides)


_TEMPLATES: dict[Path, Path] = {}


def seed_demo_store(root: Path, factory: pytest.TempPathFactory) -> Path:
    """Give ``root`` a data dir whose store already holds the embedded demo corpus (built once per test session
    and copied, so each app skips the ~3 s demo load); returns ``root``."""
    base = factory.getbasetemp()
    if base not in _TEMPLATES:
        template = factory.mktemp("demo-store-template")
        engine = Engine.open(make_settings(template))
        engine.ensure_corpus()
        engine.ws.store.close()
        _TEMPLATES[base] = template
    shutil.copytree(_TEMPLATES[base] / "data", root / "data")
    return root


@dataclass
class Tenant:
    name: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


class Api:
    """A started app (lifespan run, index fitted) with a TestClient."""

    def __init__(self, settings: Settings, warm: bool = True) -> None:
        self.app = create_app(settings, warm=warm)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.client.__enter__()
        if warm:
            assert self.app.state.service.ready.wait(120), self.app.state.service.warm_error
            assert self.app.state.service.warmed.wait(120), "warm-up (gap index, query cache) never ended"

    @property
    def svc(self):
        return self.app.state.service

    def tenant(self, prefix: str = "t") -> Tenant:
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        meta, key = create_api_key(self.svc.store, name, "tests")
        return Tenant(name, key, meta.id)

    def close(self) -> None:
        self.client.__exit__(None, None, None)


@pytest.fixture(scope="module", name="api")
def api_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The module's app (import ``api_fixture`` into a test module; tests ask for ``api``)."""
    a = Api(make_settings(seed_demo_store(tmp_path_factory.mktemp("api"), tmp_path_factory)))
    yield a
    a.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``chainmatch serve`` in a subprocess on a free loopback port, with its printed demo key."""

    def __init__(self, root: Path, key: str | None = None) -> None:
        """Start the server; ``key``: an existing key, for a restart (the demo key is printed only once)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "CHAINMATCH_DATA_DIR": str(root / "data"),
            "CHAINMATCH_CACHE_DIR": str(root / "cache"),
            "CHAINMATCH_EMBEDDER": "hash",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CHAINMATCH_DATABASE_URL", None)
        root.mkdir(parents=True, exist_ok=True)
        self.log = root / "serve.log"
        self._out = self.log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._out,
            text=True,
        )
        self.stdout_lines: list[str] = []
        self.key = key or ""
        deadline = time.time() + 120
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            if key and "staff page" in line:
                break
            m = re.search(r"#key=(cmk_\S+)", line)
            if m:
                self.key = m.group(1)
                break
        if not self.key:
            self.stop()
            raise AssertionError(
                "serve printed no demo key:\n" + "".join(self.stdout_lines) + self.log.read_text()
            )
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError("server never became ready:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._out.close()
