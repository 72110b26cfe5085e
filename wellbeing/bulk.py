"""Writing many plain rows at once: PostgreSQL ``COPY``, ``bulk_create`` elsewhere; and
``gc_paused`` for the work that builds those rows.

``bulk_create`` builds one statement with a parameter per value (tens of thousands for a chunk of
messages) and a model instance per row; ``COPY`` streams the values.  The callers pass rows as
tuples in ``columns`` order, with database values (ids, not instances); a JSON column's value is
any JSON-serialisable object (or ``None`` for SQL NULL).  Both run in the caller's transaction.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from psycopg.adapt import Dumper
from psycopg.postgres import types as postgres_types
from psycopg.pq import Format


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a batch that creates and drops hundreds of
    thousands of small objects without reference cycles (the close: rows, tuples and numbers
    for thousands of teams).  Reference counting still frees each of them; what is skipped is
    the collector's repeated scans of every live object in the process, triggered by the
    allocations alone.  The previous state is restored, so pauses nest.  Also a decorator."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class JsonText(str):
    """A JSON column's value already encoded (e.g. a short list of integers formatted at once
    for thousands of rows): copied as it is, decoded for ``bulk_create``."""


def _json_text(value: Any) -> str:
    """A JSON column's value as JSON text: a ``JsonText`` as it is, anything else encoded."""
    return value if isinstance(value, JsonText) else json.dumps(value)


def _json_encoded(rows: Iterable[tuple[Any, ...]], json_columns: Sequence[int]) -> Iterable:
    if not json_columns:
        yield from rows
        return
    for row in rows:
        values = list(row)
        for i in json_columns:
            if values[i] is not None:
                values[i] = _json_text(values[i])  # COPY's text format parses it as jsonb
        yield values


# jsonb's binary format: this version byte, then the JSON text.
JSONB_WIRE_VERSION = b"\x01"


class _JsonbBinaryDumper(Dumper):
    """jsonb for the binary COPY: the format's version byte, then ``_json_text``, in one call
    per value."""

    format = Format.BINARY
    oid = postgres_types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        return JSONB_WIRE_VERSION + _json_text(obj).encode()


@contextmanager
def _copying(
    table: str,
    columns: Sequence[str],
    rows: Iterable,
    json_columns: Sequence[int],
    *,
    types: Sequence[str] | None = None,
    queued: bool = False,
) -> Iterator[None]:
    """COPY ``rows`` into ``table``, ending when the block does; with ``types`` (each column's
    PostgreSQL type) in the binary format, which spares formatting every number as text and the
    server parsing it back.  ``queued``: a writer thread sends the rows, so the block runs while
    PostgreSQL is still taking them (the block must not use the connection)."""
    from psycopg import sql
    from psycopg.copy import QueuedLibpqWriter

    statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(" (FORMAT BINARY)" if types else ""),
    )
    # The raw cursor's copy bypasses Django's error translation: IntegrityError etc. as usual.
    with connection.wrap_database_errors, connection.cursor() as cursor:
        raw = cursor.cursor
        if types:
            # this cursor's jsonb values, objects or JsonText, dumped in one step
            raw.adapters.register_dumper(JsonText, _JsonbBinaryDumper)
        writer = QueuedLibpqWriter(raw) if queued else None
        with raw.copy(statement.as_string(raw), writer=writer) as copy:
            if types:
                copy.set_types(list(types))
                for row in rows:
                    copy.write_row(row)
            else:
                for row in _json_encoded(rows, json_columns):
                    copy.write_row(row)
            yield


def _copy(
    table: str,
    columns: Sequence[str],
    rows: Iterable,
    json_columns: Sequence[int],
    *,
    types: Sequence[str] | None = None,
) -> None:
    with _copying(table, columns, rows, json_columns, types=types):
        pass


def _column_type(model: type[Any], column: str) -> str:
    """The PostgreSQL type of a model's column, as a binary COPY names it (a foreign key: the
    type of the key it refers to; no length or precision)."""
    field = model._meta.get_field(column)  # a foreign key by its column name too
    return str(field.db_type(connection)).split("(")[0].strip()


def rows_copy(
    model: type[Any],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    json_columns: Sequence[int] = (),
    binary: bool = False,
) -> None:
    """Insert ``rows``; a duplicate of a unique value fails the statement (and the caller's
    transaction), as an insert would.  ``binary``: on PostgreSQL, COPY in the binary format
    (each value must be of its column's Python type: an int for an integer column, and so on;
    JSON values as objects or ``JsonText``)."""
    with rows_copying(model, columns, rows, json_columns=json_columns, binary=binary, queued=False):
        pass


def _copy_with_drawn_ids(
    model: type[Any], columns: Sequence[str], rows: Sequence[tuple[Any, ...]], **copy: Any
) -> list[int]:
    """``rows_copy`` of ``rows`` (PostgreSQL) with new ids drawn from the sequence of
    ``model``'s key first and copied as their first column; returns the ids, in row order."""
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    rows_copy(
        model,
        [meta.pk.column, *columns],
        [(pk, *row) for pk, row in zip(ids, rows, strict=True)],
        **copy,
    )
    return ids


def rows_copy_new(
    model: type[Any],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    json_columns: Sequence[int] = (),
) -> list[int]:
    """``rows_copy`` of rows whose key the table draws from its sequence; returns their ids,
    in the order of ``rows``.  On PostgreSQL the ids are drawn first and copied with the rows,
    so nothing is read back; elsewhere ``bulk_create`` returns them."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        return _copy_with_drawn_ids(
            model, columns, rows, json_columns=[i + 1 for i in json_columns]
        )
    ids = [obj.pk for obj in model.objects.bulk_create(_instances(model, columns, rows))]
    if None in ids:  # a database that does not return them from a bulk insert
        raise NotImplementedError("bulk_create returned no ids on this database")
    return ids


def instances_copy(model: type[Any], objs: Sequence[Any]) -> None:
    """``bulk_create`` of new ``model`` instances (their ids set on them as it sets them), by a
    binary COPY on PostgreSQL: the ids are drawn from the table's own sequence first.  Worth it
    for rows with JSON values, which ``bulk_create`` sends as text arrays (every quote in them
    escaped one by one).  The values are copied as set on the instances: no ``pre_save``
    (``auto_now``) is applied.  Elsewhere, for a single row, or for a key that is not drawn
    from a sequence, ``bulk_create`` itself."""
    meta = model._meta
    drawn = meta.pk.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField")
    if connection.vendor != "postgresql" or len(objs) < 2 or not drawn:
        model.objects.bulk_create(objs)
        return
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    ids = _copy_with_drawn_ids(
        model,
        [f.column for f in fields],
        [tuple(getattr(obj, f.attname) for f in fields) for obj in objs],
        binary=True,
    )
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


@contextmanager
def rows_copying(
    model: type[Any],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    json_columns: Sequence[int] = (),
    binary: bool = False,
    queued: bool = True,
) -> Iterator[None]:
    """``rows_copy``, overlapped with the block: on PostgreSQL a writer thread sends the rows
    while the block runs and PostgreSQL takes them meanwhile; leaving the block waits for the
    last of them (and raises what the COPY raised).  The block must not use the connection;
    elsewhere the rows are inserted before it runs.  ``rows`` may be built as they are taken
    (an iterator): PostgreSQL then starts on the first while the later ones are built."""
    if isinstance(rows, Sequence) and not rows:
        yield
        return
    if connection.vendor == "postgresql":
        types = [_column_type(model, c) for c in columns] if binary else None
        with _copying(
            model._meta.db_table, columns, rows, json_columns, types=types, queued=queued
        ):
            yield
        return
    model.objects.bulk_create(_instances(model, columns, rows))
    yield


def _instances(
    model: type[Any],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> Iterator[Any]:
    """``rows`` as unsaved ``model`` instances, for ``bulk_create`` where there is no COPY."""
    for row in rows:
        yield model(**{c: _decoded(v) for c, v in zip(columns, row, strict=True)})


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, JsonText) else value


def rows_insert_new(
    model: type[Any],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    unique: str,
    json_columns: Sequence[int] = (),
) -> int:
    """Insert ``rows``, skipping those whose ``unique`` column value exists already (a
    concurrent writer's row included).  Returns the number inserted.

    On PostgreSQL the rows are copied into a temporary table that lives until the transaction
    ends, then moved with one ``INSERT ... ON CONFLICT DO NOTHING``."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        # bulk_create does not say which rows it skipped: count the keys before and after
        at = list(columns).index(unique)
        keys = {row[at] for row in rows}
        present = model.objects.filter(**{f"{unique}__in": keys})
        before = present.count()
        model.objects.bulk_create(
            (model(**dict(zip(columns, row, strict=True))) for row in rows),
            ignore_conflicts=True,
        )
        return present.count() - before
    from psycopg import sql

    table = model._meta.db_table
    stage = sql.Identifier(f"stage_{table}")
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with transaction.atomic(), connection.cursor() as cursor:
        # Same column types as the table, no constraints; dropped at commit, so it is safe
        # behind a transaction-mode connection pooler.
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DROP AS "
                "SELECT {} FROM {} WITH NO DATA"
            )
            .format(stage, names, sql.Identifier(table))
            .as_string(cursor.cursor)
        )
        _copy(f"stage_{table}", columns, rows, json_columns)
        cursor.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {stage} RETURNING *) "
                "INSERT INTO {table} ({names}) SELECT {names} FROM moved "
                "ON CONFLICT ({unique}) DO NOTHING"
            )
            .format(
                stage=stage,
                table=sql.Identifier(table),
                names=names,
                unique=sql.Identifier(unique),
            )  # fmt: skip
            .as_string(cursor.cursor)
        )
        return cursor.rowcount
