"""Parsing requests on `/v1`: what the JSON parser keeps exact, and numbers that are not."""

from __future__ import annotations

import pytest

from staffer.gateway._openai_wire import WireError, parse_request
from staffer.models._http import encode_json, loads


def test_integers_over_64_bits_and_non_json_numbers_keep_their_meaning() -> None:
    big = 123456789012345678901234567890
    assert loads(b'{"maximum": %d}' % big) == {"maximum": big}  # not rounded to a float
    assert loads(b'{"a": NaN}')["a"] != loads(b'{"a": NaN}')["a"]  # the stdlib's NaN
    assert encode_json({"maximum": big}) == b'{"maximum":%d}' % big
    assert encode_json({"text": "caf\u00e9 \ud800"}) == '{"text":"café ?"}'.encode()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "true", '"0.5"'])
def test_a_temperature_that_is_not_a_finite_number_is_refused(value: str) -> None:
    body = '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": %s}'
    with pytest.raises(WireError) as caught:
        parse_request((body % value).encode())
    assert caught.value.param == "temperature"
    assert parse_request((body % "0.5").encode()).request.temperature == 0.5
