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
from django.template.loader import get_template
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


class TemplateSet:
    """Compiled templates looked up once and reused, e.g. for one delivery batch.

    ``get_template`` walks the loaders (and, with the cached loader, a cache keyed by name) on
    every call; a batch of a few hundred messages uses four or five templates, so keeping the
    compiled ``Template`` objects here saves that per message.  A lookup that failed is
    remembered too (every message of the batch naming that template fails the same way).
    """

    def __init__(self) -> None:
        self._templates: dict[str, object] = {}
        self._errors: dict[str, str] = {}

    def get(self, name: str):
        found = self._templates.get(name)
        if found is not None:
            return found
        if name not in self._errors:
            try:
                found = self._templates[name] = get_template(name)
                return found
            except TemplateDoesNotExist as exc:
                self._errors[name] = f"template {exc} does not exist"
            except TemplateSyntaxError as exc:
                self._errors[name] = f"syntax error: {str(exc)[:200]}"
        raise TemplateRenderError(self._errors[name])

    def render(self, name: str, context: dict) -> str:
        return self.get(name).render(context)  # type: ignore[attr-defined]


def render_message(
    message: Message,
    *,
    unsubscribe_url: str = "",
    templates: TemplateSet | None = None,
    chat: bool = True,
) -> RenderedMessage:
    """Render ``message`` in its recipient's language.  ``templates`` shares compiled templates
    across the messages of a batch; ``chat=False`` skips the Slack/Teams text (e-mail)."""
    templates = templates or TemplateSet()
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
            subject = " ".join(templates.render(base + "subject.txt", template_context).split())
            text = templates.render(base + "body.txt", template_context).strip()
            body_html = templates.render(base + "body.html", template_context)
            chat_text = (
                templates.render(base + "chat.txt", template_context).strip() if chat else ""
            )
        except TemplateRenderError:
            raise
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
        chat_text=chat_text,
        button_label=label,
        button_url=button_url,
        unsubscribe_url=unsubscribe_url,
    )
