"""The JSON reader both doors use: strict JSON in UTF-8, numbers exactly as written."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from infra.inputs import InexactNumber, read_json


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": "19.99", "n": 5}', {"a": "19.99", "n": 5}),
        (b'{"a": 19.99}', {"a": Decimal("19.99")}),
        (b"[0.1, 1234567890.12345678901]", [Decimal("0.1"), Decimal("1234567890.12345678901")]),
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (b'"\\ud800"', "\ud800"),
    ],
)
def test_json_is_read_exactly(raw: bytes, expected: object) -> None:
    document = read_json(raw)
    assert document == expected
    assert not isinstance(document, float)


def test_a_number_with_an_exponent_is_told_apart() -> None:
    assert isinstance(read_json(b'{"a": 1e3}')["a"], InexactNumber)
    assert not isinstance(read_json(b'{"a": 1000.0}')["a"], InexactNumber)


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b"\xff", b"\xef\xbb\xbf{}", b"{", b""])
def test_what_is_not_strict_json_in_utf8_is_refused(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        read_json(raw)
