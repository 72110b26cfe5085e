"""Public ids that follow the order rows are written in.

A random id (version 4) lands on any page of its unique index, so a bulk write of 100,000
rows touches most of the index, and after each checkpoint PostgreSQL logs every page it
touches whole (a full-page image) before changing it.  A time-ordered id (version 7: the
millisecond, then random bits) lands at the index's right edge, on the pages just written.

Only for rows whose creation time is stored or known anyway (invitations, outgoing
messages).  Never for anything next to answers: an answer's id would then tell when it was
given (DESIGN.md, anonymity), so ``Response`` and ``PendingAnswer`` keep random ids.
"""

from __future__ import annotations

import uuid

import uuid6


def ordered_uuid() -> uuid.UUID:
    """A version 7 UUID: 48 bits of milliseconds, then 74 random bits (ids made in the same
    millisecond by one process still increase).  A plain ``uuid.UUID``, as the database gives
    back: some encoders (orjson) take that class only, not the library's subclass."""
    return uuid.UUID(int=uuid6.uuid7().int)
