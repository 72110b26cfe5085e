import pytest

from wellbeing.stats.scoring import ItemScale, item_to_index, respondent_index

STRESS_ELO = ItemScale(minimum=1, maximum=5, reverse=False, higher_is_worse=True)
WHO5_ITEM = ItemScale(minimum=0, maximum=5, reverse=False, higher_is_worse=False)
CBI_ITEM = ItemScale(minimum=0, maximum=100, reverse=False, higher_is_worse=True)


@pytest.mark.parametrize(("answer", "index"), [(1, 0.0), (3, 50.0), (5, 100.0)])
def test_single_item_stress_maps_one_to_five_onto_zero_to_hundred(answer, index):
    assert item_to_index(answer, STRESS_ELO) == pytest.approx(index)


def test_who5_is_reversed_so_that_high_wellbeing_is_a_low_index():
    # given five WHO-5 answers of 3: raw 15 x 4 = 60 % wellbeing
    answers = [(3, WHO5_ITEM)] * 5

    # then the index is 100 - 60 = 40 (below 50 % wellbeing = index above 50)
    assert respondent_index(answers) == pytest.approx(40.0)
    assert item_to_index(5, WHO5_ITEM) == 0.0
    assert item_to_index(0, WHO5_ITEM) == 100.0


def test_cbi_item_passes_through_and_reverse_keyed_item_flips():
    assert item_to_index(75, CBI_ITEM) == 75.0
    reversed_item = ItemScale(minimum=0, maximum=100, reverse=True, higher_is_worse=True)
    assert item_to_index(75, reversed_item) == 25.0


def test_respondent_index_averages_only_answered_items():
    answers = [(5, STRESS_ELO), (None, STRESS_ELO), (3, STRESS_ELO)]
    assert respondent_index(answers) == pytest.approx(75.0)


def test_respondent_who_skipped_everything_has_no_index():
    assert respondent_index([(None, STRESS_ELO), (float("nan"), WHO5_ITEM)]) is None
    assert respondent_index([]) is None


@pytest.mark.parametrize("answer", [0, 6, float("inf")])
def test_answer_outside_its_scale_is_rejected(answer):
    with pytest.raises(ValueError):
        item_to_index(answer, STRESS_ELO)


def test_scale_needs_a_range():
    with pytest.raises(ValueError):
        ItemScale(minimum=3, maximum=3, reverse=False, higher_is_worse=True)
