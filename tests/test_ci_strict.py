"""With CI=true a skip fails the run (tests/ci_strict.py); without it, skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

BODY = '''
import pytest

def test_needs_chromium():
    pytest.skip("chromium not found")

def test_fine():
    assert 1 + 1 == 2
'''
MODULE_SKIP = '''
import pytest
pytest.skip("reference data not found", allow_module_level=True)
'''


def _run(tmp_path: Path, ci: str | None, target: str = ".") -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_body.py").write_text(BODY, encoding="utf-8")
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "ci_strict", "-p", "no:cacheprovider", target],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_skips_fail_the_run_in_ci(tmp_path: Path):
    done = _run(tmp_path, "true", "test_body.py")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout and "chromium not found" in done.stdout


def test_a_module_level_skip_fails_the_run_in_ci(tmp_path: Path):
    done = _run(tmp_path, "true", "test_module_skip.py")
    assert done.returncode != 0, done.stdout
    assert "reference data not found" in done.stdout


def test_skips_stay_skips_outside_ci(tmp_path: Path):
    done = _run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 2 skipped" in done.stdout
