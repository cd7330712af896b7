"""统一社会信用代码 (unified social credit code) validation per GB 32100-2015.

A code has 18 characters from the 31-character set ``0-9 A-H J-N P-R T U W-Y`` (no I, O, S, V, Z):

====== ===========================================================================
pos    meaning
====== ===========================================================================
1      registration authority (登记管理部门代码), e.g. ``9`` = 市场监管 (工商)
2      organisation type (机构类别代码), e.g. ``1`` = 企业
3–8    administrative division code of the registering authority (6 digits)
9–17   organisation code (主体标识码, GB 11714)
18     check character: ``C18 = 31 - (Σ Ci·Wi mod 31)`` with ``Wi = 3^(i-1) mod 31``;
       a result of 31 is written ``0``
====== ===========================================================================

Only the GB 32100 check character and the structure are enforced; the embedded GB 11714 organisation-code check
(position 17) is not, because codes issued to 个体工商户 and some re-registered bodies do not carry a valid one.
"""

from __future__ import annotations

import operator
import unicodedata

__all__ = ["CHARSET", "WEIGHTS", "check_character", "is_valid_credit_code", "validate_credit_code"]

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(
    pow(3, i, 31) for i in range(17)
)  # 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_LENGTH = 18


def check_character(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters of a code.

    Args:
        first17: 17 characters from :data:`CHARSET` (upper case).

    Returns:
        The 18th character.

    Raises:
        ValueError: if ``first17`` is not 17 characters of the code alphabet.
    """
    if len(first17) != _LENGTH - 1:
        raise ValueError(f"expected 17 characters before the check character, received {len(first17)}")
    bad = [c for c in first17 if c not in _VALUE]
    if bad:
        raise ValueError(f"character {bad[0]!r} is not allowed (allowed: {CHARSET})")
    total = sum(map(operator.mul, map(_VALUE.__getitem__, first17), WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def validate_credit_code(code: str) -> str:
    """Normalise and validate a 统一社会信用代码.

    Full-width characters, surrounding/inner spaces and lower case are normalised first, so
    ``"９１６５０１００ ... f"`` is accepted as its canonical upper-case form.

    Args:
        code: the code as written in a register export.

    Returns:
        The canonical 18-character upper-case code.

    Raises:
        ValueError: with the reason (length, forbidden character, non-digit division code, wrong check character).

    Example:
        >>> validate_credit_code("91350100M000100Y43")
        '91350100M000100Y43'
    """
    if code is None:
        raise ValueError("credit code is empty")
    if type(code) is str and code in _RECENT:  # imports check each code twice (row, then upsert)
        return code
    text = str(code)
    if not (len(text) == _LENGTH and text.isascii() and text.isalnum() and text.upper() == text):
        text = unicodedata.normalize("NFKC", text).replace(" ", "").replace("-", "").strip().upper()
    if not text:
        raise ValueError("credit code is empty")
    if len(text) != _LENGTH:
        raise ValueError(f"expected 18 characters, received {len(text)} ({text!r})")
    for pos, c in enumerate(text, start=1):
        if c not in _VALUE:
            hint = " (I, O, S, V and Z are never used)" if c.isalpha() and c.isascii() else ""
            raise ValueError(f"character {c!r} at position {pos} is not allowed{hint}")
    if not text[2:8].isdigit():
        raise ValueError(
            f"positions 3-8 must be the 6-digit administrative division code, received {text[2:8]!r}"
        )
    expected = check_character(text[:17])
    if text[17] != expected:
        raise ValueError(f"check character mismatch: expected {expected!r}, received {text[17]!r}")
    if len(_RECENT) >= 50_000:
        _RECENT.clear()
    _RECENT[text] = None
    return text


_RECENT: dict[str, None] = {}  # canonical codes validated lately (valid codes only: each is its own result)


def is_valid_credit_code(code: str | None) -> bool:
    """True when :func:`validate_credit_code` accepts ``code``."""
    try:
        validate_credit_code(code or "")
    except ValueError:
        return False
    return True
