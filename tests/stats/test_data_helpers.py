"""The shared helpers of the statistics modules."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wellbeing.stats._data import finite, is_number, positions, sorted_unique


def _int_arrays(elements):
    return hnp.arrays(
        st.sampled_from([np.int64, np.int32]),
        st.integers(min_value=0, max_value=300),
        elements=elements,
    )


@settings(max_examples=300, deadline=None)
# narrow ranges take the table path, wide ones the sort
@given(_int_arrays(st.integers(-50, 50)) | _int_arrays(st.integers(-(2**31), 2**31 - 1)))
def test_sorted_unique_equals_numpy_unique(values):
    result = sorted_unique(values)
    assert result.dtype == values.dtype
    assert result.tolist() == np.unique(values).tolist()


@settings(max_examples=300, deadline=None)
# a table of narrow range takes the lookup path, a wide one the binary search
@given(
    _int_arrays(st.integers(-50, 50)) | _int_arrays(st.integers(-(2**31), 2**31 - 1)),
    st.randoms(use_true_random=False),
)
def test_positions_equal_searchsorted(values, random):
    table = np.unique(values)
    picked = np.array(
        [random.choice(table.tolist()) for _ in range(values.size)] if table.size else []
    )
    picked = picked.astype(values.dtype)
    assert positions(table, picked).tolist() == np.searchsorted(table, picked).tolist()
    assert positions(table, picked).dtype == np.int64


def test_missing_values_are_not_numbers():
    assert [is_number(v) for v in (1, 2.5, None, float("nan"), float("inf"), True, "x")] == [
        True, True, False, False, False, False, False,
    ]  # fmt: skip
    assert finite([1, None, float("nan"), 3.0]) == [1.0, 3.0]
