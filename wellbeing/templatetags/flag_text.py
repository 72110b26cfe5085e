"""``{% flag_explanation facts fallback %}``: a flag's explanation in the active language, for
messages rendered from a stored context (``wellbeing.flag_text``)."""

from __future__ import annotations

from typing import Any

from django import template

from wellbeing.flag_text import explain

register = template.Library()


@register.simple_tag
def flag_explanation(facts: dict[str, Any] | None, fallback: str = "") -> str:
    """``facts`` written out, or ``fallback`` (the stored English text) when there are none."""
    try:
        return explain(facts) or fallback
    except (KeyError, TypeError, ValueError):  # a context stored by an older release
        return fallback
