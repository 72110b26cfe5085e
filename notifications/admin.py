"""Admin for the outbox (read-only, with a "retry now" action) and channel settings.

Never shows ``sensitive_context`` (one-time links) or full webhook URLs (bearer secrets).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import services
from .models import ChannelSettings, Message, NotificationPreference
from .webhooks import mask_url


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "organisation",
        "kind",
        "channel",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "short_error",
    ]
    list_filter = ["state", "kind", "channel", "organisation"]
    search_fields = ["public_id", "idempotency_key", "last_error"]
    date_hierarchy = "created_at"
    list_select_related = ["organisation"]
    actions = ["retry_now"]
    MESSAGE_FIELDS: tuple[str, ...] = (
        "public_id",
        "organisation",
        "kind",
        "channel",
        "recipient_ref",
        "template",
        "context",
        "idempotency_key",
        "state",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "created_at",
        "last_error",
        "had_sensitive_context",
    )
    fields = MESSAGE_FIELDS
    readonly_fields = MESSAGE_FIELDS

    @admin.display(description="recipient")
    def recipient_ref(self, obj: Message) -> str:
        # The person's random id, not their address: admins of the outbox need no more.
        return str(obj.recipient.public_id) if obj.recipient_id and obj.recipient else "—"

    @admin.display(description="last error")
    def short_error(self, obj: Message) -> str:
        return obj.last_error[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Retry now (failed or waiting messages)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        retried, skipped = services.messages_retry_now(
            message_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"{retried} message(s) queued for delivery now.")
        if skipped:
            self.message_user(
                request,
                f"{skipped} message(s) skipped: their one-time link was erased when they "
                "failed; issue a new invitation instead.",
                level=messages.WARNING,
            )


class MaskedSecretWidget(forms.TextInput):
    """Shows the stored webhook masked; an empty submission keeps the stored value."""

    def format_value(self, value):
        return ""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("attrs", {"autocomplete": "off", "size": 60})
        super().__init__(*args, **kwargs)


class ChannelSettingsForm(forms.ModelForm):
    slack_webhook_url = forms.URLField(
        label=gettext_lazy("Slack webhook url"),
        required=False,
        assume_scheme="https",
        widget=MaskedSecretWidget(),
    )
    teams_webhook_url = forms.URLField(
        label=gettext_lazy("Teams webhook url"),
        required=False,
        assume_scheme="https",
        widget=MaskedSecretWidget(),
    )

    class Meta:
        model = ChannelSettings
        fields = [
            "organisation",
            "slack_enabled",
            "slack_webhook_url",
            "teams_enabled",
            "teams_webhook_url",
            "default_channel",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("slack_webhook_url", "teams_webhook_url"):
            stored = getattr(self.instance, name, "")
            self.fields[name].required = False
            self.fields[name].help_text = (
                _("Stored: %(masked)s. Leave empty to keep it; type 'clear' to remove.")
                % {"masked": mask_url(stored)}
                if stored
                else _("Not set.")
            )

    def _clean_secret(self, name: str) -> str:
        value = (self.data.get(self.add_prefix(name)) or "").strip()
        if not value:
            return getattr(self.instance, name, "")
        if value == "clear":
            return ""
        return self.cleaned_data.get(name, "")

    def clean_slack_webhook_url(self) -> str:
        return self._clean_secret("slack_webhook_url")

    def clean_teams_webhook_url(self) -> str:
        return self._clean_secret("teams_webhook_url")


@admin.register(ChannelSettings)
class ChannelSettingsAdmin(admin.ModelAdmin):
    form = ChannelSettingsForm
    list_display = [
        "organisation",
        "slack_enabled",
        "teams_enabled",
        "default_channel",
        "slack",
        "teams",
    ]

    @admin.display(description="Slack webhook")
    def slack(self, obj: ChannelSettings) -> str:
        return mask_url(obj.slack_webhook_url)

    @admin.display(description="Teams webhook")
    def teams(self, obj: ChannelSettings) -> str:
        return mask_url(obj.teams_webhook_url)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "channel", "mute_reminders", "mute_digests", "work_start", "work_end"]
    list_filter = ["channel", "mute_reminders", "mute_digests"]
    exclude = ["slack_webhook_url", "teams_webhook_url"]
    readonly_fields = ["user"]
