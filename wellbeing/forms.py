"""Forms of the in-product admin pages.  They only parse and validate input; writes go through
services (``wellbeing.services``, ``wellbeing.people_import``)."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .errors import ServiceError
from .models import MINIMUM_ANONYMITY_THRESHOLD, FlagSettings, Organisation, Team, User
from .people_import import MAX_BYTES

# Python's numbering (Monday is 0), as ``date.weekday()`` and the schedules store it.
WEEKDAY_CHOICES = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


def service_errors_to_form(
    form: forms.BaseForm, exc: ServiceError, *, aliases: dict[str, str] | None = None
) -> None:
    """Put a ServiceError's field messages next to the form's fields (or on top)."""
    aliases = aliases or {}
    placed = False
    for name, problems in exc.fields.items():
        target = aliases.get(name, name)
        for problem in problems:
            form.add_error(target if target in form.fields else None, problem)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class TeamChoiceField(forms.ModelChoiceField):
    """Teams labelled by their full path ("Customer Experience / Support"): names repeat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(Team.objects.none(), *args, **kwargs)
        self.paths: dict[int, str] = {}

    def for_organisation(self, organisation: Organisation) -> None:
        teams = {t.pk: t for t in Team.objects.filter(organisation=organisation)}
        for pk, team in teams.items():
            parts: list[str] = []
            seen: set[int] = set()
            node: Team | None = team
            while node is not None and node.pk not in seen:
                seen.add(node.pk)
                parts.append(node.name)
                node = teams.get(node.parent_id) if node.parent_id else None
            self.paths[pk] = " / ".join(reversed(parts))
        self.queryset = Team.objects.filter(organisation=organisation, is_active=True)

    def label_from_instance(self, obj: Any) -> str:
        return self.paths.get(obj.pk, str(obj))


class TeamCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    parent = TeamChoiceField(label=_("Inside team"), required=False, empty_label=_("— top level —"))
    customer_facing = forms.BooleanField(label=_("Serves customers directly"), required=False)

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent = self.fields["parent"]
        assert isinstance(parent, TeamChoiceField)
        parent.for_organisation(organisation)


class TeamEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    customer_facing = forms.BooleanField(label=_("Serves customers directly"), required=False)


class TeamMoveForm(forms.Form):
    parent = TeamChoiceField(label=_("Move inside"), required=False, empty_label=_("— top level —"))

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent = self.fields["parent"]
        assert isinstance(parent, TeamChoiceField)
        parent.for_organisation(organisation)


class LeadAddForm(forms.Form):
    user = forms.ModelChoiceField(label=_("Person"), queryset=User.objects.none())

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            organisation=organisation, is_active=True
        ).order_by("full_name", "email")


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class OrganisationSettingsForm(forms.Form):
    locale = forms.ChoiceField(
        label=_("Language"),
        choices=settings.LANGUAGES,
        help_text=_(
            "Pages, check-ins and messages for everyone who has not chosen a language of their "
            "own on their preferences."
        ),
    )
    timezone = forms.ChoiceField(
        label=_("Timezone"),
        choices=_timezone_choices,
        help_text=_(
            "When check-ins open and close for schedules without a timezone of their own, and "
            "working hours for people who have not set theirs."
        ),
    )


class ThresholdsForm(forms.Form):
    anonymity_threshold = forms.IntegerField(
        label=_("Minimum group size (k)"),
        min_value=MINIMUM_ANONYMITY_THRESHOLD,
        max_value=50,
        help_text=_("No number derived from fewer than k people is ever shown. At least 3."),
    )
    comment_threshold = forms.IntegerField(
        label=_("Minimum group size for comments"),
        min_value=MINIMUM_ANONYMITY_THRESHOLD,
        max_value=100,
        help_text=_("Free-text comments are shown only for groups at least this large (≥ k)."),
    )
    comments_enabled = forms.BooleanField(label=_("Allow free-text comments"), required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        k, c = cleaned.get("anonymity_threshold"), cleaned.get("comment_threshold")
        if k is not None and c is not None and c < k:
            self.add_error("comment_threshold", _("Must be at least the minimum group size k."))
        return cleaned


class FlagSettingsForm(forms.ModelForm):
    class Meta:
        model = FlagSettings
        fields = [
            "high_stress_level",
            "high_stress_consecutive",
            "client_burnout_level",
            "resolve_after_cycles",
            "reopen_within_days",
        ]
        # The labels Django derives from the field names, marked for translation.
        labels = {
            "high_stress_level": _("High stress level"),
            "high_stress_consecutive": _("High stress consecutive"),
            "client_burnout_level": _("Client burnout level"),
            "resolve_after_cycles": _("Resolve after cycles"),
            "reopen_within_days": _("Reopen within days"),
        }


class PeopleImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV or XLSX file"),
        help_text=_(
            "Columns: email, name, team path (e.g. “Customer Experience / Support Tier 1”), "
            "lead (yes/no), start, end (YYYY-MM-DD). At most 5 MB and 50,000 rows."
        ),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB."), params={"mb": MAX_BYTES // (1024 * 1024)}
            )
        return upload


class PeopleSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    inactive = forms.BooleanField(label=_("Include deactivated"), required=False)


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), required=False)

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", _("All actions"))] + [  # type: ignore[attr-defined]
            (a, a) for a in actions
        ]
