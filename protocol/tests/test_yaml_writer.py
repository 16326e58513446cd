"""The YAML writer: what it writes loads back (with PyYAML) to what it was given."""

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetwire.protocol.yaml_writer import dump_yaml

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(
        ["no", "on", "~", "- x", "a: b", "#c", "line\nline\n", "x\n\n", " lead\nx", "|"]
    )
)
_keys = st.text() | st.sampled_from(["$ref", "on", "No", "1", "<<", "a b", "x-y.z", "A\n"])
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150)
@given(st.dictionaries(_keys, _trees, max_size=5))
def test_yaml_writer_round_trips(value):
    assert yaml.safe_load(dump_yaml(value)) == (value or None)


def test_yaml_writer_refuses_non_json_values():
    with pytest.raises(ValueError, match="JSON"):
        dump_yaml({"x": float("nan")})
    with pytest.raises(TypeError):
        dump_yaml({"x": object()})
