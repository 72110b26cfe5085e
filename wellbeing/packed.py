"""Reading many rows of fixed-size numbers from PostgreSQL without a Python object per row.

The query returns one ``bytea`` column ``packed`` per row (its fields in network byte order, e.g.
``int8send(a) || float8send(b)``); PostgreSQL concatenates them into one value, which arrives in
binary and becomes one numpy structured array.  Used by the close for its history and rosters.
Values packed like that and stored (``wellbeing.models.DetectionColumns``) are read as they are,
a few large rows joined here (``packed_values``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from django.db import connection
from numpy.typing import NDArray
from psycopg import sql


def packed_records(
    query: sql.Composable | str, params: Sequence[Any] | None, dtype: np.dtype[Any]
) -> NDArray[Any]:
    """The rows of ``query`` (see the module docstring) as an array of ``dtype`` (big-endian
    fields in the order the query packs them)."""
    inner = sql.SQL(query) if isinstance(query, str) else query  # type: ignore[arg-type]
    statement = sql.SQL("SELECT string_agg(packed, ''::bytea) FROM ({}) rows").format(inner)
    return packed_values(statement, params, dtype)


def packed_values(
    query: sql.Composed, params: Sequence[Any] | None, dtype: np.dtype[Any]
) -> NDArray[Any]:
    """The stored ``packed`` values ``query`` selects (one ``bytea`` column, already in the
    layout of ``dtype``) as one array: fetched row by row, since concatenating large values
    in PostgreSQL costs more than sending them.  A NULL (no rows to aggregate) is empty."""
    connection.ensure_connection()
    # psycopg's plain cursor on Django's connection: the bytea comes back binary, not as hex
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(query, params, binary=True)
        data = b"".join(bytes(row[0]) for row in cursor.fetchall() if row[0] is not None)
    if len(data) % dtype.itemsize:
        raise ValueError("unexpected packed row layout")
    return np.frombuffer(data, dtype=dtype)
