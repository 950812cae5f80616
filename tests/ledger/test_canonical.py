"""The fast JCS path is byte-identical to the rfc8785 reference (DESIGN §3)."""

from __future__ import annotations

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, jcs

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))  # any text but lone surrogates
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_jcs_equals_reference(value: object) -> None:
    assert jcs(value) == rfc8785.dumps(value)


@given(
    st.dictionaries(
        st.text(
            alphabet=st.characters(min_codepoint=0xE000, exclude_categories=["Cs"]), max_size=3
        ),
        st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
        max_size=5,
    )
)
def test_non_ascii_keys_use_utf16_order(value: dict[str, int]) -> None:
    assert jcs(value) == rfc8785.dumps(value)


def test_control_characters_and_non_ascii() -> None:
    value = {"b": "\x00\x1f\x7f\u2028é中\U0001f600", "a": [1, True, None]}
    assert jcs(value) == rfc8785.dumps(value)
    assert jcs(value).startswith(b'{"a":[1,true,null],"b":"\\u0000\\u001f\x7f')


def test_floats_and_big_integers_go_to_the_reference() -> None:
    assert jcs({"x": 1.5e21, "y": 0.1}) == rfc8785.dumps({"x": 1.5e21, "y": 0.1})
