"""The store's and the wire's JSON (orjson) reads back what the standard library would."""

from __future__ import annotations

import json

import pytest

from storage import codec


@pytest.mark.parametrize("value", [
    {"text": "楼道灯坏了 <b>急</b> & 😀", "chat_id": -1001234567890123, "n": 1.5, "ok": None},
    [True, False, [], {}, "", "\n\t\"\\"],
    {"reply_markup": {"inline_keyboard": [[{"text": "⭐ 1", "callback_data": "r:1:1"}]]}},
])
def test_what_is_written_reads_back_the_same_as_with_json(value):
    text = codec.dumps(value)
    assert codec.loads(text) == json.loads(text) == value
    assert codec.loads(codec.dumps_bytes(value)) == value


def test_keys_that_are_not_strings_become_strings_as_with_json():
    assert (codec.loads(codec.dumps({1: "a", 2.5: "b"}))
            == json.loads(json.dumps({1: "a", 2.5: "b"})))


def test_a_lone_surrogate_is_escaped_not_refused():
    text = codec.dumps({"text": "broken \ud83d emoji"})
    text.encode("utf-8")  # storable
    assert codec.loads(text) == {"text": "broken \ud83d emoji"}


def test_what_json_cannot_carry_is_a_type_error_and_bad_text_a_value_error():
    with pytest.raises(TypeError):
        codec.dumps({"x": object()})
    with pytest.raises(ValueError):
        codec.loads("{not json")
