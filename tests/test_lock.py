"""requirements/lock.txt pins every dependency pyproject.toml declares (core and the dev, milvus and postgres
extras), each at a version its specifier admits; regenerate it with ``bash scripts/lock.sh``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCKED_EXTRAS = ("dev", "milvus", "postgres")  # `ray` is an opt-in engine, installed on request only


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for n, raw in enumerate((REPO / "requirements" / "lock.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"lock.txt line {n}: {line!r} is not an exact 'name==version' pin"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in LOCKED_EXTRAS:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_lock_pins_every_declared_dependency_within_its_specifier():
    pins = _lock()
    problems = []
    for req in _declared():
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is declared in pyproject.toml but not pinned in requirements/lock.txt")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req}: lock pins {pins[name]}, outside the declared range")
    assert not problems, "run `bash scripts/lock.sh`:\n" + "\n".join(problems)


def test_lock_pins_torch_to_the_local_cpu_build():
    assert _lock()["torch"].public == "2.13.0"


def test_install_scripts_use_the_lock():
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        text = (REPO / script).read_text(encoding="utf-8")
        assert "-c requirements/lock.txt" in text, f"{script} installs without the lock"
