"""The embedded demo candidate corpus: enterprise profiles shipped with the product.

``matcher/data/enterprises/demo_enterprises.jsonl`` holds one :class:`~matcher.records.Enterprise` per
line, written by the project (not copied from any data set) so a fresh install can show real shortlists
without ``../shared``:

- ``"source": "authored:public-facts"``: real enterprises described from public facts (name, location,
  main products, stock code, group). Revenue shares are approximate (``extra.share_basis ==
  "approximate"``) or left empty when unknown; ``extra.note`` says what a thin profile rests on.
- ``"source": "authored:fictional"``: clearly fictional examples (``示例`` in the name, tag ``虚构示例``)
  for small local firms and Xinjiang links; their employees and registered capital are invented.

``extra.demo_chains`` names the chains (in Chinese) each profile was written for; the matcher does not
read it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from matcher.errors import ImportFileError
from matcher.knowledge.catalogue import DATA_DIR
from matcher.records import Enterprise
from matcher.text import normalize_company_name

logger = logging.getLogger(__name__)

DEMO_ENTERPRISES_FILE = DATA_DIR / "enterprises" / "demo_enterprises.jsonl"


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "-"


def parse_enterprise_jsonl(path: Path) -> list[Enterprise]:
    """Validated enterprises of a JSON-lines file (one object per line; blank lines are skipped).

    Args:
        path: the ``.jsonl`` file.

    Returns:
        The enterprises in file order, ``normalized_name`` filled in where it was empty.

    Raises:
        ImportFileError: the file is missing, a line is not a JSON object, a line fails validation (the
            message names the line number and the field), or an id or name repeats an earlier line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ImportFileError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path.name}: expected UTF-8 text, received undecodable bytes ({exc})"
        ) from exc
    out: list[Enterprise] = []
    ids: dict[str, int] = {}
    names: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFileError(
                f"{path.name}: line {number}: expected a JSON object, received invalid JSON ({exc.msg})"
            ) from exc
        if not isinstance(raw, dict):
            raise ImportFileError(
                f"{path.name}: line {number}: expected a JSON object, received {type(raw).__name__}"
            )
        try:
            ent = Enterprise.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            received = f" (received {err['input']!r})" if "input" in err and err["type"] != "missing" else ""
            raise ImportFileError(
                f"{path.name}: line {number}: field '{_field(err['loc'])}': {err['msg']}{received}"
            ) from exc
        if ent.id in ids:
            raise ImportFileError(
                f"{path.name}: line {number}: field 'id': duplicate id '{ent.id}' "
                f"(first on line {ids[ent.id]})"
            )
        if ent.name in names:
            raise ImportFileError(
                f"{path.name}: line {number}: field 'name': duplicate name '{ent.name}' "
                f"(first on line {names[ent.name]})"
            )
        ids[ent.id] = names[ent.name] = number
        if not ent.normalized_name:
            ent.normalized_name = normalize_company_name(ent.name)
        out.append(ent)
    return out


def load_demo_enterprises(path: Path | None = None) -> list[Enterprise]:
    """The embedded demo candidate corpus (≈ 640 profiles over 32 chains and 30 provinces).

    Args:
        path: another file in the same format (default: the shipped ``demo_enterprises.jsonl``).

    Returns:
        Fresh, validated :class:`Enterprise` objects (callers may mutate them).

    Raises:
        ImportFileError: a line is malformed (line number and field in the message).

    Example:
        >>> ents = load_demo_enterprises()
        >>> any(e.name == "新疆嘉润资源控股有限公司" for e in ents)
        True
    """
    ents = parse_enterprise_jsonl(Path(path) if path else DEMO_ENTERPRISES_FILE)
    logger.info("demo corpus: %d enterprises", len(ents))
    return ents
