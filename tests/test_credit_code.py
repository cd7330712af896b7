"""统一社会信用代码 validation (GB 32100-2015): check character, structure and normalisation."""

from __future__ import annotations

import random

import pytest

from matcher.store.credit_code import (
    CHARSET,
    WEIGHTS,
    check_character,
    is_valid_credit_code,
    validate_credit_code,
)


def _code(body: str) -> str:
    """A code with its check character computed by the standard's formula, written out independently here."""
    values = {c: i for i, c in enumerate("0123456789ABCDEFGHJKLMNPQRTUWXY")}
    weights = [3**i % 31 for i in range(17)]
    total = sum(values[c] * w for c, w in zip(body, weights, strict=True))
    return body + "0123456789ABCDEFGHJKLMNPQRTUWXY"[(31 - total % 31) % 31]


def test_weights_are_powers_of_three_mod_31_as_in_the_standard():
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert len(CHARSET) == 31 and not set("IOSVZ") & set(CHARSET)


@pytest.mark.parametrize(
    "body",
    [
        "91650100MA77T6Q80",  # 市场监管 registered enterprise, Urumqi
        "91652300734491850",
        "91320500134756920",
        "52650100500001730",  # 民政 registered social organisation
        "12650000010679530",  # 机构编制 public institution
    ],
)
def test_codes_with_the_computed_check_character_validate(body: str):
    code = _code(body)
    assert validate_credit_code(code) == code
    assert check_character(body) == code[-1]


def test_random_valid_codes_round_trip_and_every_single_character_change_of_the_check_is_rejected():
    rng = random.Random(7)
    for _ in range(200):
        body = (
            "91"
            + "".join(rng.choice("0123456789") for _ in range(6))
            + "".join(rng.choice(CHARSET) for _ in range(9))
        )
        code = _code(body)
        assert is_valid_credit_code(code)
        for wrong in CHARSET:
            if wrong != code[-1]:
                assert not is_valid_credit_code(code[:-1] + wrong)


def test_the_specimen_code_used_in_public_documentation_validates():
    assert validate_credit_code("91350100M000100Y43") == "91350100M000100Y43"


def test_check_character_zero_when_the_weighted_sum_is_a_multiple_of_31():
    rng = random.Random(3)
    while True:
        body = "91650100" + "".join(rng.choice(CHARSET) for _ in range(9))
        if check_character(body) == "0":
            break
    assert validate_credit_code(body + "0") == body + "0"


def test_a_swapped_pair_of_digits_is_caught():
    code = _code("91650100228597371")
    swapped = code[:9] + code[10] + code[9] + code[11:]
    assert swapped != code
    with pytest.raises(ValueError, match="check character mismatch"):
        validate_credit_code(swapped)


def test_wrong_check_character_message_states_expected_and_received():
    code = _code("91650100MA77T6Q80")
    wrong = "1" if code[-1] != "1" else "2"
    with pytest.raises(ValueError) as err:
        validate_credit_code(code[:-1] + wrong)
    assert f"expected {code[-1]!r}" in str(err.value) and f"received {wrong!r}" in str(err.value)


def test_lower_case_full_width_and_spaces_are_normalised():
    code = _code("91650100MA77T6Q80")
    messy = " " + "".join(chr(ord(c) + 0xFEE0) for c in code[:9]) + " " + code[9:].lower() + " "
    assert validate_credit_code(messy) == code


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "empty"),
        ("91650100MA77T6Q8", "expected 18 characters, received 16"),
        ("91650100MA77T6Q8012", "expected 18 characters, received 19"),
        ("91650100MA77I6Q80X", "'I' at position 13 is not allowed"),
        ("91650100MA77O6Q80X", "'O' at position 13 is not allowed"),
        ("91650100MA77S6Q80X", "'S' at position 13"),
        ("9165010óMA77T6Q80X", "position 8"),
        ("91AB0100MA77T6Q80X", "6-digit administrative division code"),
    ],
)
def test_malformed_codes_are_rejected_with_the_reason(code: str, reason: str):
    with pytest.raises(ValueError, match=reason):
        validate_credit_code(code)
    assert not is_valid_credit_code(code)


def test_check_character_refuses_a_body_of_the_wrong_length():
    with pytest.raises(ValueError, match="expected 17 characters"):
        check_character("9165")
