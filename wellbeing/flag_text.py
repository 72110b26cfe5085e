"""A flag's plain-language explanation, composed from its evidence in the active language.

The flag rules (``flags.py``) store the conclusions they drew next to the figures, in the
flag's ``evidence``: the chart's verdict, the trend's direction, whether client-related burnout
rose, the participation rates.  ``facts`` keeps just what a sentence needs (small enough to
travel in an alert's context), ``explain`` writes the sentences with ``gettext``: dashboards and
alerts show them in the reader's language, and the flag's ``explanation`` column keeps them in
English as the record (``record``).  Evidence stored before the conclusions were (older flags)
gives no facts; the stored explanation is shown for those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import formats, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# Trend verdicts stored in a detection's evidence ("trend").
TREND_UP, TREND_FLAT_OR_FALLING, TREND_UNCLEAR = "up", "flat_or_falling", "unclear"
TRENDS = (TREND_UP, TREND_FLAT_OR_FALLING, TREND_UNCLEAR)

_KINDS = ("high_stress", "rising_stress", "empathy_risk", "participation_drop")


def _number(value: float) -> str:
    """``value`` in the active language's number format, without a needless ``.0``."""
    value = float(value)
    return formats.number_format(int(value) if value.is_integer() else value)


def _whole(value: float) -> str:
    return formats.number_format(round(value))


def _signed(value: float, decimals: int) -> str:
    sign = "-" if value < 0 else "+"
    return sign + formats.number_format(abs(value), decimals)


def _percent(rate: float) -> str:
    return _whole(rate * 100)


def _chart(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    trend = evidence.get("trend")
    shifted = evidence.get("shifted_cycles")
    if trend not in (*TRENDS, None) or not isinstance(shifted, int):
        return None
    return {
        "signal": evidence.get("status") == "signal",
        "organisation": evidence.get("baseline_source") == "organisation",
        "shifted": shifted,
        "trend": trend,
    }


def _customer(evidence: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": str(evidence["name"]),
        "unit": str(evidence.get("unit") or ""),
        "fallen": evidence.get("direction") == "higher_is_better",
        "first": float(evidence["first"]),
        "latest": float(evidence["latest"]),
        "weeks": len(evidence["weeks"]),
        "slope": float(evidence["slope_per_week"]),
    }


def facts(kind: str, evidence: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What ``explain`` needs from a flag's ``evidence``; ``None`` when the evidence does not
    carry it (flags stored before their conclusions were)."""
    if kind not in _KINDS or not isinstance(evidence, Mapping):
        return None
    try:
        if kind == "high_stress":
            return {
                "kind": kind,
                "level": float(evidence["threshold"]),
                "consecutive": int(evidence["consecutive_cycles"]),
                "latest": float(evidence["statistic"]),
            }
        if kind == "participation_drop":
            return {
                "kind": kind,
                "latest": float(evidence["latest_rate"]),
                "usual": float(evidence["usual_rate"]),
            }
        stress = _chart(evidence)
        if stress is None:
            return None
        if kind == "rising_stress":
            return {"kind": kind, "stress": stress}
        burnout = evidence["client_burnout"]
        customer = evidence.get("customer")
        return {
            "kind": kind,
            "stress": stress,
            "burnout_rising": bool(burnout["rising"]),
            "burnout_latest": float(burnout["latest"]) if burnout.get("latest") is not None else 0,
            "customer": _customer(customer) if customer else None,
        }
    except (KeyError, TypeError, ValueError):
        return None


def _chart_sentence(label: str, chart: Mapping[str, Any]) -> str:
    organisation = chart["organisation"]
    if chart["signal"]:
        shifted = chart["shifted"]
        if organisation:
            text = ngettext(
                "%(label)s has risen above the organisation's usual level and has stayed above "
                "the control limit for %(count)d cycle",
                "%(label)s has risen above the organisation's usual level and has stayed above "
                "the control limit for %(count)d cycles",
                shifted,
            )
        else:
            text = ngettext(
                "%(label)s has risen above its own usual level and has stayed above the control "
                "limit for %(count)d cycle",
                "%(label)s has risen above its own usual level and has stayed above the control "
                "limit for %(count)d cycles",
                shifted,
            )
        text %= {"label": label, "count": shifted}
    elif organisation:
        text = _("%(label)s is within the normal range of the organisation's usual level") % {
            "label": label
        }
    else:
        text = _("%(label)s is within the normal range of its own usual level") % {"label": label}
    trend = {
        TREND_UP: _(", and the recent trend is upward"),
        TREND_FLAT_OR_FALLING: _(", and the recent trend is flat or falling"),
        TREND_UNCLEAR: _(", and the recent trend is not clearly upward"),
    }.get(chart["trend"], "")
    return text + trend + "."


def _customer_sentence(customer: Mapping[str, Any]) -> str:
    unit = customer["unit"]
    values = {
        "name": customer["name"],
        "first": _number(customer["first"]) + unit,
        "latest": _number(customer["latest"]) + unit,
        "weeks": customer["weeks"],
        "slope": _signed(customer["slope"], 2) + unit,
    }
    if customer["fallen"]:
        text = _(
            "Supporting evidence from customer service: %(name)s has fallen from %(first)s to "
            "%(latest)s over the last %(weeks)d weeks (%(slope)s a week)."
        )
    else:
        text = _(
            "Supporting evidence from customer service: %(name)s has risen from %(first)s to "
            "%(latest)s over the last %(weeks)d weeks (%(slope)s a week)."
        )
    return (
        text % values
        + " "
        + _("This supports, but does not prove, that the strain is reaching customers.")
    )


def explain(found: Mapping[str, Any] | None) -> str:
    """The explanation for ``facts``' result, in the active language ("" for ``None``)."""
    if not found:
        return ""
    kind = found["kind"]
    if kind == "high_stress":
        return ngettext(
            "The team's stress index has been above %(level)s (the level your organisation set) "
            "for at least %(count)d check-in in a row; it is now %(latest)s.",
            "The team's stress index has been above %(level)s (the level your organisation set) "
            "for at least %(count)d check-ins in a row; it is now %(latest)s.",
            found["consecutive"],
        ) % {
            "level": _number(found["level"]),
            "count": found["consecutive"],
            "latest": _whole(found["latest"]),
        }
    if kind == "participation_drop":
        return (
            _("Participation fell to %(latest)s%% against a usual %(usual)s%%.")
            % {"latest": _percent(found["latest"]), "usual": _percent(found["usual"])}
            + " "
            + _(
                "A falling response rate can mean people are overloaded or no longer trust the "
                "check-in."
            )
        )
    stress = _chart_sentence(_("Stress"), found["stress"])
    if kind == "rising_stress":
        return stress
    if found["burnout_rising"]:
        burnout = _(
            "This customer-facing team's stress is rising and client-related burnout is rising too."
        )
    else:
        burnout = _(
            "This customer-facing team's stress is rising and client-related burnout is high "
            "(%(latest)s of 100)."
        ) % {"latest": _whole(found["burnout_latest"])}
    parts = [
        burnout,
        _(
            "Stressed people have less empathy to give, so the quality of customer contacts may "
            "suffer."
        ),
        stress,
    ]
    if found["customer"]:
        parts.append(_customer_sentence(found["customer"]))
    return " ".join(parts)


def record(kind: str, evidence: Mapping[str, Any] | None) -> str:
    """The explanation as stored with the flag: English ("" when the evidence has no facts)."""
    with translation.override("en"):
        return explain(facts(kind, evidence))
