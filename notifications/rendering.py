"""Rendering an outbox message into e-mail (text + HTML) and Slack / Teams payloads.

Templates live in ``notifications/templates/notifications/<template>/``: ``subject.txt``,
``body.txt``, ``body.html`` and ``chat.txt`` (the short text for Slack/Teams).  They are rendered
in the recipient's language.  HTML is auto-escaped; chat text is escaped for Slack mrkdwn
(``&``, ``<``, ``>``) and Teams.  Context values reach templates as ``{{ ... }}`` and the
one-time secrets as ``{{ sensitive.url }}``.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext

from wellbeing.languages import reading_language

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
    "account": "Set your password",
}


def message_language(message: Message) -> str:
    return reading_language(message.recipient, message.organisation)


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
        # Rendered skeletons by (template, language, shared context, ...); None = not usable.
        self.skeletons: dict[tuple, object] = {}

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


_SLOTS = 4  # recipient_name, button_url, unsubscribe_url, sensitive.url
_PARTS = ("subject", "text", "html", "chat")


class _Skeleton:
    """One (template, language, shared context) rendered once with marker values in the four
    per-recipient slots; a message is then its pieces joined with its own values, escaped
    where the template escaped the marker.

    Built from a render with markers containing ``& < > " '`` (so raw and escaped uses are
    told apart) and kept only if it reproduces a second render with other markers and the
    first real message's full render exactly: a filter that transforms a slot value, or
    anything else the markers cannot follow, turns the skeleton off for that key."""

    def __init__(self, outputs: dict[str, str], markers: list[str]) -> None:
        forms: dict[str, tuple[int, bool]] = {}
        for index, marker in enumerate(markers):
            if not marker:
                continue
            forms[marker] = (index, False)
            forms[str(escape(marker))] = (index, True)
        pattern = re.compile(
            "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) or "(?!)"
        )
        self.parts: dict[str, list[str | tuple[int, bool]]] = {}
        for name, output in outputs.items():
            pieces: list[str | tuple[int, bool]] = []
            last = 0
            for found in pattern.finditer(output):
                pieces.append(output[last : found.start()])
                pieces.append(forms[found.group()])
                last = found.end()
            pieces.append(output[last:])
            self.parts[name] = pieces

    def fill(self, values: Sequence[str]) -> dict[str, str]:
        escaped = [str(escape(v)) for v in values]
        return {
            name: "".join(
                piece
                if isinstance(piece, str)
                else (escaped[piece[0]] if piece[1] else values[piece[0]])
                for piece in pieces
            )
            for name, pieces in self.parts.items()
        }


def _render_parts(
    templates: TemplateSet, base: str, template_context: dict, chat: bool
) -> dict[str, str]:
    try:
        return {
            "subject": templates.render(base + "subject.txt", template_context),
            "text": templates.render(base + "body.txt", template_context),
            "html": templates.render(base + "body.html", template_context),
            "chat": templates.render(base + "chat.txt", template_context) if chat else "",
        }
    except TemplateRenderError:
        raise
    except TemplateDoesNotExist as exc:
        raise TemplateRenderError(f"template {exc} does not exist")
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"syntax error: {str(exc)[:200]}")
    except Exception as exc:  # a broken filter or tag: fail this message, not the batch
        raise TemplateRenderError(f"{type(exc).__name__} while rendering")


def _skeleton_render(
    message: Message,
    templates: TemplateSet,
    *,
    shared: dict,
    sensitive: dict,
    values: list[str],
    chat: bool,
    full: Callable[[], tuple[dict[str, str], str]],
) -> tuple[dict[str, str], str] | None:
    """The four parts and the button label through the batch's skeleton for this message's
    template, language and shared context; ``None`` when no skeleton applies."""
    if set(sensitive) - {"url"} or not all(isinstance(v, str) for v in values):
        return None
    try:
        shared_key = json.dumps(shared, sort_keys=True)
    except (TypeError, ValueError):
        return None
    key = (
        message.template,
        message_language(message),
        message.kind,
        message.organisation.name,
        shared_key,
        "url" in sensitive,
        tuple(bool(v) for v in values),
        chat,
    )
    cache = templates.skeletons
    entry = cache.get(key, False)
    if entry is None:
        return None
    if entry is not False:
        assert isinstance(entry, tuple)
        return entry[0].fill(values), entry[1]
    if len(cache) > 256:
        cache.clear()
    base = f"notifications/{message.template}/"
    nonce = secrets.token_hex(4)

    def markers_render(markers: list[str]) -> dict[str, str]:
        with translation.override(message_language(message)):
            return _render_parts(
                templates,
                base,
                {
                    **shared,
                    "sensitive": {**sensitive, "url": markers[3]} if "url" in sensitive else {},
                    "recipient_name": markers[0],
                    "button_url": markers[1],
                    "unsubscribe_url": markers[2],
                },
                chat,
            )

    # An empty slot stays empty (its truthiness is part of the key: {% if %} on it).
    marked = [f"Pslot{i}{nonce}&<>\"'" if values[i] else "" for i in range(_SLOTS)]
    plain = [f"Qslot{i}{nonce}" if values[i] else "" for i in range(_SLOTS)]
    try:
        skeleton = _Skeleton(markers_render(marked), marked)
        real, label = full()
        ok = skeleton.fill(plain) == markers_render(plain) and skeleton.fill(values) == real
    except TemplateRenderError:
        cache[key] = None
        return None
    cache[key] = (skeleton, label) if ok else None
    return real, label


def render_message(
    message: Message,
    *,
    unsubscribe_url: str = "",
    templates: TemplateSet | None = None,
    chat: bool = True,
) -> RenderedMessage:
    """Render ``message`` in its recipient's language.  ``templates`` shares compiled templates
    (and rendered skeletons, see ``_Skeleton``) across the messages of a batch; ``chat=False``
    skips the Slack/Teams text (e-mail)."""
    templates = templates or TemplateSet()
    sensitive = message.sensitive_context or {}
    context = dict(message.context or {})
    button_url = str(sensitive.get("url") or context.get("url") or "")
    recipient = message.recipient
    recipient_name = recipient.get_short_name() if recipient is not None else ""
    shared = {
        **context,
        "kind": message.kind,
        "organisation_name": message.organisation.name,
        "site_url": settings.SITE_URL,
    }

    def full() -> tuple[dict[str, str], str]:
        return _full_render(
            message,
            templates,
            context=context,
            sensitive=sensitive,
            recipient_name=recipient_name,
            button_url=button_url,
            unsubscribe_url=unsubscribe_url,
            chat=chat,
        )

    done = _skeleton_render(
        message,
        templates,
        shared=shared,
        sensitive=sensitive,
        values=[recipient_name, button_url, unsubscribe_url, sensitive.get("url", "")],
        chat=chat,
        full=full,
    )
    parts, label = done if done is not None else full()
    return RenderedMessage(
        subject=" ".join(parts["subject"].split()),
        text=parts["text"].strip(),
        html=parts["html"],
        chat_text=parts["chat"].strip(),
        button_label=label,
        button_url=button_url,
        unsubscribe_url=unsubscribe_url,
    )


def _full_render(
    message: Message,
    templates: TemplateSet,
    *,
    context: dict,
    sensitive: dict,
    recipient_name: str,
    button_url: str,
    unsubscribe_url: str,
    chat: bool,
) -> tuple[dict[str, str], str]:
    base = f"notifications/{message.template}/"
    with translation.override(message_language(message)):
        template_context = {
            **context,
            "sensitive": sensitive,
            "kind": message.kind,
            "organisation_name": message.organisation.name,
            "recipient_name": recipient_name,
            "button_url": button_url,
            "unsubscribe_url": unsubscribe_url,
            "site_url": settings.SITE_URL,
        }
        parts = _render_parts(templates, base, template_context, chat)
        label = str(
            context.get("button_label")
            or gettext(DEFAULT_BUTTON_LABELS.get(message.kind, "Open Pulse"))
        )
    return parts, label
