"""The decoding edge's NUL rule: a NUL anywhere in a decoded JSON document is found and named."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from entrypoints.http.strict_json import find_nul

_text = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_documents_without_nul_pass(value: Any) -> None:
    assert find_nul(msgspec.json.decode(msgspec.json.encode(value))) is None


@given(json_values, _text, _text)
def test_a_nul_in_any_value_is_found_at_its_path(value: Any, before: str, after: str) -> None:
    document = {"outer": [value, {"k": before + "\x00" + after}]}
    assert find_nul(msgspec.json.decode(msgspec.json.encode(document))) == "outer[1].k"


def test_a_nul_in_a_key_is_found() -> None:
    assert find_nul({"items": [{"na\x00me": "x"}]}) == "items[0].na\x00me"
