"""A JSON renderer for the large read-only analytics answers.

The admin heatmap of a large organisation is tens of thousands of cells; the standard library's
encoder spent as long turning them into bytes as the database took to read them.  orjson gives
the same JSON for the plain values these views return (strings, numbers, booleans, None, lists,
dicts); anything else falls back to DRF's own encoder so the output never differs in kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type or "", renderer_context or {})
        if indent:  # a client asked for pretty output: the standard path formats it
            return super().render(data, accepted_media_type, renderer_context)
        return orjson.dumps(data, default=JSONEncoder().default)
