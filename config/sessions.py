"""Django's database sessions with a leaner read (``SESSION_ENGINE``).

Same table, same signed data, same expiry rule and the same writes as
``django.contrib.sessions.backends.db``; only the per-request read is a prebuilt statement
instead of an ORM query, whose compilation costs more than the look-up itself on every
request that touches the session (the check-in form among them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Any:
        """The session row (its key and data) if it exists and has not expired, else None."""
        model = self.model
        connection = connections[router.db_for_read(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT session_data FROM {table}"  # noqa: S608 - the model's table name
                " WHERE session_key = %s AND expire_date > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])
