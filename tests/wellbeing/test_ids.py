"""Time-ordered public ids (``wellbeing.ids``)."""

import uuid

import orjson

from wellbeing.ids import ordered_uuid


def test_ordered_ids_are_version_7_and_increase_even_within_a_millisecond():
    ids = [ordered_uuid() for _ in range(5000)]
    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # the leading 48 bits are the time: the last id is not older than the first
    assert ids[-1].int >> 80 >= ids[0].int >> 80


def test_an_ordered_id_is_a_plain_uuid_every_encoder_takes():
    made = ordered_uuid()
    assert type(made) is uuid.UUID
    assert orjson.dumps(made) == f'"{made}"'.encode()
