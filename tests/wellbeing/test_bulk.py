"""Bulk row writes (COPY on PostgreSQL): what lands, what is skipped, and rollback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from notifications.models import Message
from wellbeing.bulk import (
    JsonText,
    instances_copy,
    rows_copy,
    rows_copy_new,
    rows_copying,
    rows_insert_new,
)

pytestmark = pytest.mark.django_db

COLUMNS = ["public_id", "organisation_id", "kind", "channel", "template", "context",
           "had_sensitive_context", "idempotency_key", "state", "attempts", "next_attempt_at",
           "last_error", "created_at"]  # fmt: skip
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def row(organisation, key: str, context: dict | None = None) -> tuple:
    import uuid

    return (uuid.uuid4(), organisation.pk, "digest", "email", "digest", context or {}, False,
            key, "pending", 0, AT, "", AT)  # fmt: skip


@pytest.fixture
def organisation():
    from tests.factories import OrganisationFactory

    return OrganisationFactory()


def test_copied_rows_land_with_their_json(organisation):
    rows_copy(
        Message, COLUMNS, [row(organisation, "a", {"n": 1, "text": "tab\there"})], json_columns=(5,)
    )
    message = Message.objects.get(idempotency_key="a")
    assert message.context == {"n": 1, "text": "tab\there"}
    assert message.next_attempt_at == AT


def test_json_given_as_text_lands_as_the_same_value(organisation):
    # with or without the column named as JSON, already encoded text is stored decoded
    rows_copy(Message, COLUMNS, [row(organisation, "a", JsonText('{"n": [1, 2, 3]}'))])
    rows_copy(Message, COLUMNS, [row(organisation, "b", JsonText('{"n": [4]}'))], json_columns=(5,))
    assert Message.objects.get(idempotency_key="a").context == {"n": [1, 2, 3]}
    assert Message.objects.get(idempotency_key="b").context == {"n": [4]}


def test_binary_copy_lands_the_same_values(organisation):
    # the binary format (PostgreSQL; a plain insert elsewhere): JSON as an object or as text,
    # a uuid, a time, an integer, a boolean and an empty string each land as given
    first, second = row(organisation, "a", {"n": 1, "text": "tab\there"}), row(organisation, "b")
    second = (*second[:5], JsonText('{"n": [4, 5]}'), True, *second[7:9], 3, *second[10:])
    rows_copy(Message, COLUMNS, [first, second], binary=True)
    a, b = Message.objects.get(idempotency_key="a"), Message.objects.get(idempotency_key="b")
    assert (a.public_id, a.context, a.next_attempt_at, a.attempts) == (
        first[0],
        {"n": 1, "text": "tab\there"},
        AT,
        0,
    )
    assert (b.context, b.had_sensitive_context, b.attempts, b.last_error) == (
        {"n": [4, 5]},
        True,
        3,
        "",
    )


def test_a_copied_duplicate_fails_like_an_insert(organisation):
    rows_copy(Message, COLUMNS, [row(organisation, "a")], json_columns=(5,))
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_copy(Message, COLUMNS, [row(organisation, "a")], json_columns=(5,))
    assert Message.objects.filter(idempotency_key="a").count() == 1


def test_insert_new_skips_existing_and_repeated_keys_and_counts_the_rest(organisation):
    rows_copy(Message, COLUMNS, [row(organisation, "old", {"v": "first"})], json_columns=(5,))
    with transaction.atomic():
        # twice in one transaction: the staging table is reused, empty each time
        first = rows_insert_new(
            Message,
            COLUMNS,
            [
                row(organisation, "old", {"v": "second"}),
                row(organisation, "new"),
                row(organisation, "new"),
            ],  # fmt: skip
            unique="idempotency_key",
            json_columns=(5,),
        )
        second = rows_insert_new(
            Message, COLUMNS, [row(organisation, "newer")], unique="idempotency_key",
            json_columns=(5,),
        )  # fmt: skip
    assert (first, second) == (1, 1)
    assert Message.objects.get(idempotency_key="old").context == {"v": "first"}
    assert set(Message.objects.values_list("idempotency_key", flat=True)) == {"old", "new", "newer"}


def test_insert_new_rolls_back_with_the_callers_transaction(organisation):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        rows_insert_new(
            Message, COLUMNS, [row(organisation, "x")], unique="idempotency_key", json_columns=(5,)
        )
        raise Boom
    assert not Message.objects.exists()


def test_gc_paused_restores_the_collector_and_nests():
    import gc

    from wellbeing.bulk import gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause left the outer one in place
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector paused by someone else stays paused
    finally:
        gc.enable()


def test_rows_copying_runs_the_block_once_and_lands_every_row(organisation):
    ran = []
    rows = [row(organisation, f"k{i}") for i in range(2000)]
    with rows_copying(Message, COLUMNS, rows, json_columns=(5,), binary=True):
        ran.append(True)
    assert ran == [True]
    assert Message.objects.filter(idempotency_key__startswith="k").count() == 2000


def test_rows_copying_raises_a_duplicate_on_leaving_and_keeps_nothing(organisation):
    ran = []
    with pytest.raises(IntegrityError), transaction.atomic():
        rows = [row(organisation, "a"), row(organisation, "a")]
        with rows_copying(Message, COLUMNS, rows, binary=True):
            ran.append(True)
    # on PostgreSQL the block ran and the rows failed when the COPY ended; elsewhere the rows
    # are inserted before the block
    assert ran == ([True] if connection.vendor == "postgresql" else [])
    assert not Message.objects.filter(idempotency_key="a").exists()


def test_rows_copying_abandons_the_copy_when_the_block_fails(organisation):
    rows = [row(organisation, "a")]
    with (
        pytest.raises(ZeroDivisionError),
        transaction.atomic(),
        rows_copying(Message, COLUMNS, rows, binary=True),
    ):
        1 / 0  # noqa: B018
    assert not Message.objects.filter(idempotency_key="a").exists()
    # the connection is usable again
    rows_copy(Message, COLUMNS, [row(organisation, "b")], binary=True)
    assert Message.objects.filter(idempotency_key="b").exists()


def test_copied_instances_get_their_ids_and_land_as_bulk_create_would(organisation):
    # ids drawn from the table's sequence (PostgreSQL) or given by bulk_create (elsewhere):
    # either way each instance is saved, under its own id, with its JSON and defaults
    messages = [
        Message(
            organisation=organisation,
            kind="digest",
            channel="email",
            template="digest",
            context={"n": i, "quote": 'say "hi"\\n'},
            idempotency_key=f"k{i}",
            next_attempt_at=AT,
        )
        for i in range(3)
    ]
    earlier = Message.objects.create(
        organisation=organisation, kind="digest", channel="email", template="digest",
        idempotency_key="before", next_attempt_at=AT,
    )  # fmt: skip
    instances_copy(Message, messages)
    assert all(m.pk is not None and not m._state.adding for m in messages)
    assert len({m.pk for m in messages} | {earlier.pk}) == 4
    for i, message in enumerate(messages):
        stored = Message.objects.get(pk=message.pk)
        assert (stored.idempotency_key, stored.context) == (
            f"k{i}",
            {"n": i, "quote": 'say "hi"\\n'},
        )
        assert (stored.public_id, stored.state, stored.attempts) == (
            message.public_id,
            "pending",
            0,
        )
    # the sequence moved past the copied ids: the next plain insert does not collide
    later = Message.objects.create(
        organisation=organisation, kind="digest", channel="email", template="digest",
        idempotency_key="after", next_attempt_at=AT,
    )  # fmt: skip
    assert later.pk > max(m.pk for m in messages)


def test_new_rows_copied_come_back_with_their_ids_in_order(organisation):
    earlier = Message.objects.create(
        organisation=organisation, kind="digest", channel="email", template="digest",
        idempotency_key="before", next_attempt_at=AT,
    )  # fmt: skip
    rows = [row(organisation, f"k{i}", {"n": i}) for i in range(5)]
    # when new rows are copied
    ids = rows_copy_new(Message, COLUMNS, rows, json_columns=(5,))
    # then each id is its own row's, with its JSON, and a later insert takes a fresh id
    assert len(set(ids)) == 5 and earlier.pk not in ids
    for i, pk in enumerate(ids):
        stored = Message.objects.get(pk=pk)
        assert (stored.idempotency_key, stored.context) == (f"k{i}", {"n": i})
    later = Message.objects.create(
        organisation=organisation, kind="digest", channel="email", template="digest",
        idempotency_key="after", next_attempt_at=AT,
    )  # fmt: skip
    assert later.pk > max(ids)
    assert rows_copy_new(Message, COLUMNS, []) == []


def test_copied_instances_roll_back_with_the_callers_transaction(organisation):
    messages = [
        Message(organisation=organisation, kind="digest", channel="email", template="digest",
                idempotency_key=key, next_attempt_at=AT)
        for key in ("a", "a")
    ]  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        instances_copy(Message, messages)
    assert not Message.objects.filter(idempotency_key="a").exists()
