"""HTML edges: a person's notification preferences and the one-click unsubscribe page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from wellbeing.errors import ServiceError
from wellbeing.languages import reading_language
from wellbeing.models import User
from wellbeing.services import person_language_set

from . import services
from .models import Channel, ChannelSettings, NotificationPreference
from .webhooks import validate_slack_webhook_url, validate_teams_webhook_url

WEEKDAYS = [
    (0, gettext_lazy("Monday")),
    (1, gettext_lazy("Tuesday")),
    (2, gettext_lazy("Wednesday")),
    (3, gettext_lazy("Thursday")),
    (4, gettext_lazy("Friday")),
    (5, gettext_lazy("Saturday")),
    (6, gettext_lazy("Sunday")),
]


class PreferenceForm(forms.Form):
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        choices=[("", gettext_lazy("As my browser is set"))] + list(settings.LANGUAGES),
        # people of an organisation: the empty choice is its language (set in __init__)
        help_text=gettext_lazy("For Pulse's pages when you are signed in, and for its messages."),
    )
    channel = forms.ChoiceField(label=gettext_lazy("Send my notifications by"))
    slack_webhook_url = forms.URLField(
        label=gettext_lazy("My Slack incoming webhook"),
        required=False,
        assume_scheme="https",
        validators=[validate_slack_webhook_url],
        widget=forms.URLInput(attrs={"autocomplete": "off"}),
    )
    teams_webhook_url = forms.URLField(
        label=gettext_lazy("My Teams incoming webhook"),
        required=False,
        assume_scheme="https",
        validators=[validate_teams_webhook_url],
        widget=forms.URLInput(attrs={"autocomplete": "off"}),
    )
    mute_reminders = forms.BooleanField(label=gettext_lazy("Mute reminders"), required=False)
    mute_digests = forms.BooleanField(label=gettext_lazy("Mute digests"), required=False)
    work_start = forms.TimeField(label=gettext_lazy("Working hours start"))
    work_end = forms.TimeField(label=gettext_lazy("Working hours end"))
    work_days = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Working days"),
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(
        self,
        *args,
        channel_settings: ChannelSettings | None,
        organisation_language: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if organisation_language:
            name = dict(settings.LANGUAGES).get(organisation_language, organisation_language)
            language_field = self.fields["language"]
            assert isinstance(language_field, forms.ChoiceField)
            language_field.choices = [
                ("", _("My organisation's language (%(name)s)") % {"name": name}),
                *settings.LANGUAGES,
            ]
        choices: list[tuple[str, str]] = [(Channel.EMAIL.value, str(Channel.EMAIL.label))]
        for channel in (Channel.SLACK, Channel.TEAMS):
            if channel_settings is not None and channel_settings.allows(channel):
                choices.append((channel.value, str(channel.label)))
        channel_field = self.fields["channel"]
        assert isinstance(channel_field, forms.ChoiceField)
        channel_field.choices = choices


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)  # login_required
    channel_settings = ChannelSettings.objects.filter(organisation_id=user.organisation_id).first()
    current = NotificationPreference.objects.filter(user=user).first() or NotificationPreference(
        user=user
    )
    initial = {
        "language": user.language,
        "channel": current.channel or Channel.EMAIL,
        "slack_webhook_url": current.slack_webhook_url,
        "teams_webhook_url": current.teams_webhook_url,
        "mute_reminders": current.mute_reminders,
        "mute_digests": current.mute_digests,
        "work_start": current.work_start,
        "work_end": current.work_end,
        "work_days": current.work_days,
    }
    form = PreferenceForm(
        request.POST or None,
        initial=initial,
        channel_settings=channel_settings,
        organisation_language=user.organisation.locale if user.organisation else None,
    )
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        language = values.pop("language")
        try:
            with transaction.atomic():
                services.preference_update(user=user, **values)
                person_language_set(user=user, language=language)
        except ServiceError as exc:
            for name, problems in exc.fields.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
        else:
            # the confirmation in the language just chosen
            translation.activate(reading_language(user, user.organisation))
            messages.success(request, _("Your notification preferences are saved."))
            return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})


@csrf_exempt  # RFC 8058 one-click: mail clients POST without a CSRF token; the signed token is the proof
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = services.unsubscribe_user_from_token(token)
    except ServiceError:
        return render(request, "notifications/unsubscribe_invalid.html", status=404)
    if request.method == "POST":
        services.preference_unsubscribe(user=user)
        return render(request, "notifications/unsubscribe_done.html")
    # GET only shows a button: link scanners in mail gateways follow links and must not
    # unsubscribe anyone.
    return render(request, "notifications/unsubscribe_confirm.html", {"token": token})
