"""Rendering an outbox message into e-mail (text + HTML) and Slack / Teams payloads.

Templates live in ``notifications/templates/notifications/<template>/``: ``subject.txt``,
``body.txt``, ``body.html`` and ``chat.txt`` (the short text for Slack/Teams).  They are rendered
in the recipient's language.  HTML is auto-escaped; chat text is escaped for Slack mrkdwn
(``&``, ``<``, ``>``) and Teams.  Context values reach templates as ``{{ ... }}`` and the
one-time secrets as ``{{ sensitive.url }}``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

if TYPE_CHECKING:
    from .models import Message


class TemplateRenderError(Exception):
    """The message's template is missing or broken; the message fails, the batch goes on."""


def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    chat_text: str
    button_label: str
    button_url: str
    unsubscribe_url: str = ""

    def slack_payload(self) -> dict:
        """Slack incoming-webhook payload: a section and a button (Block Kit)."""
        blocks: list[dict] = [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{slack_escape(self.subject)}*\n{slack_escape(self.chat_text)}",
                },
            }
        ]
        if self.button_url:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": self.button_label[:75]},
                            "url": self.button_url,
                            "style": "primary",
                        }
                    ],
                }
            )
        return {"text": slack_escape(self.subject), "blocks": blocks}

    def teams_payload(self) -> dict:
        """Teams incoming-webhook / Workflows payload: an Adaptive Card with an OpenUrl button."""
        card: dict = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": html.escape(self.subject, quote=False),
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                },
                {
                    "type": "TextBlock",
                    "text": html.escape(self.chat_text, quote=False),
                    "wrap": True,
                },
            ],
        }
        if self.button_url:
            card["actions"] = [
                {"type": "Action.OpenUrl", "title": self.button_label, "url": self.button_url}
            ]
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }


DEFAULT_BUTTON_LABELS = {
    "invitation": "Start the check-in",
    "reminder": "Answer the check-in",
    "flag_alert": "See the evidence",
    "digest": "Open the dashboard",
    "cycle_summary": "Open the dashboard",
}


def message_language(message: Message) -> str:
    recipient = message.recipient
    if recipient is not None and recipient.language:
        return recipient.language
    return message.organisation.locale or settings.LANGUAGE_CODE


def render_message(message: Message, *, unsubscribe_url: str = "") -> RenderedMessage:
    sensitive = message.sensitive_context or {}
    context = dict(message.context or {})
    button_url = str(sensitive.get("url") or context.get("url") or "")
    recipient = message.recipient
    base = f"notifications/{message.template}/"
    with translation.override(message_language(message)):
        template_context = {
            **context,
            "sensitive": sensitive,
            "kind": message.kind,
            "organisation_name": message.organisation.name,
            "recipient_name": recipient.get_short_name() if recipient is not None else "",
            "button_url": button_url,
            "unsubscribe_url": unsubscribe_url,
            "site_url": settings.SITE_URL,
        }
        try:
            subject = " ".join(render_to_string(base + "subject.txt", template_context).split())
            text = render_to_string(base + "body.txt", template_context).strip()
            body_html = render_to_string(base + "body.html", template_context)
            chat = render_to_string(base + "chat.txt", template_context).strip()
        except TemplateDoesNotExist as exc:
            raise TemplateRenderError(f"template {exc} does not exist")
        except TemplateSyntaxError as exc:
            raise TemplateRenderError(f"syntax error: {str(exc)[:200]}")
        except Exception as exc:  # a broken filter or tag: fail this message, not the batch
            raise TemplateRenderError(f"{type(exc).__name__} while rendering")
        label = str(
            context.get("button_label")
            or gettext(DEFAULT_BUTTON_LABELS.get(message.kind, "Open Pulse"))
        )
    return RenderedMessage(
        subject=subject,
        text=text,
        html=body_html,
        chat_text=chat,
        button_label=label,
        button_url=button_url,
        unsubscribe_url=unsubscribe_url,
    )
