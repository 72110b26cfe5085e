"""A JSON renderer for the large read-only analytics answers.

The admin heatmap of a large organisation is tens of thousands of cells; the standard library's
encoder spent as long turning them into bytes as the database took to read them.  orjson gives
the same JSON for the plain values these views return (strings, numbers, booleans, None, lists,
dicts, and dataclasses written as objects); anything else falls back to DRF's own encoder.
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
        # orjson writes dataclasses (the heatmap's cells) as objects; pretty output (the browsable
        # API asks for it) is indented by two spaces whatever width was asked for.
        option = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(data, default=JSONEncoder().default, option=option)
