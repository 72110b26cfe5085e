"""``{% manage_nav as items %}``: the administration's sections, for its navigation."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

register = template.Library()

SECTIONS = (
    ("manage:overview", _("Overview")),
    ("manage:teams", _("Teams")),
    ("manage:people", _("People")),
    ("manage_checkins:surveys", _("Surveys")),
    ("manage_checkins:questions", _("Questions")),
    ("manage_checkins:schedules", _("Schedules")),
    ("manage_checkins:support", _("Support resources")),
    ("manage:thresholds", _("Privacy")),
    ("manage:flag_settings", _("Flags")),
    ("manage:metrics", _("Customer metrics")),
    ("manage_checkins:channels", _("Channels")),
    ("manage:audit", _("Audit log")),
)


@register.simple_tag(takes_context=True)
def manage_nav(context: template.Context) -> list[dict[str, object]]:
    """Each section's link and label, and whether it is the page being shown."""
    match = getattr(context.get("request"), "resolver_match", None)
    here = match.view_name if match else ""
    return [
        {"url": reverse(name), "label": label, "current": name == here} for name, label in SECTIONS
    ]
