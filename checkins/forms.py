"""The employee check-in form: one radio group per rating item, an optional comment.

Presentational only.  It offers each item's scale (plus "prefer not to say" on optional items),
keeps what was chosen when the page comes back with errors, and turns the POST into the
``answers``/``comment`` arguments of ``checkins.services.checkin_submit`` — which stays the one
place that decides what is valid.  The checks here mirror the item's own data (its scale, whether
it is required, the comment limit) so every problem can be named at once, before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.utils.choices import BaseChoiceIterator
from django.utils.translation import gettext_lazy as _

from .models import COMMENT_MAX_LENGTH, Question

#: The value of the "prefer not to say" radio; submitted as a skipped item (``None``).
PREFER_NOT_TO_SAY = "na"


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    html_id: str


@dataclass(frozen=True)
class Item:
    """One question as the template renders it."""

    field_name: str
    question_id: int
    text: str
    options: list[Option]
    required: bool
    chosen: str
    errors: list[str]

    @property
    def error_id(self) -> str:
        return f"{self.field_name}-error"

    @property
    def legend_id(self) -> str:
        return f"{self.field_name}-legend"


class NormalChoices(BaseChoiceIterator):
    """Choices already in Django's normal form (a list of ``(value, label)`` string pairs),
    given to a field and its widget as they are: Django re-normalises a plain list item by
    item, once for the field and again for the widget, which was most of building the form."""

    def __init__(self, choices: list[tuple[str, str]]) -> None:
        self.choices = choices

    def __iter__(self):  # noqa: ANN204 - an iterator of pairs, as Django's own iterators
        return iter(self.choices)

    def __len__(self) -> int:
        return len(self.choices)


def field_name_for(question: Question) -> str:
    return f"q{question.pk}"


class CheckinForm(forms.Form):
    """Built per invitation from the questions it shows (its rating items, then the free-text
    question when comments are on), in the person's language."""

    def __init__(
        self,
        *args: object,
        questions: list[Question],
        language: str,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.questions = [q for q in questions if q.is_scale]
        self.comment_question = next((q for q in questions if not q.is_scale), None)
        self.language = language
        self.choices: dict[str, list[tuple[str, str]]] = {}
        for question in self.questions:
            choices = [(str(v), label) for v, label in self._scale(question)]
            if not question.required:
                choices.append((PREFER_NOT_TO_SAY, str(_("Prefer not to say"))))
            self.choices[field_name_for(question)] = choices
            self.fields[field_name_for(question)] = forms.ChoiceField(
                choices=NormalChoices(choices),
                required=question.required,
                widget=forms.RadioSelect,
                label=question.text_in(language),
                error_messages={
                    "required": _("Please choose an answer: this question is required."),
                    "invalid_choice": _("Please choose one of the options shown."),
                },
            )
        if self.comment_question is not None:
            self.fields["comment"] = forms.CharField(
                required=False,
                strip=True,
                max_length=COMMENT_MAX_LENGTH,
                widget=forms.Textarea(attrs={"rows": 4, "maxlength": COMMENT_MAX_LENGTH}),
                label=self.comment_question.text_in(language),
                error_messages={
                    "max_length": _(
                        "Please keep the comment to %(limit_value)d characters "
                        "(it has %(show_value)d)."
                    ),
                },
            )
            self.fields["comment_confirmed"] = forms.BooleanField(
                required=False,
                label=_(
                    "I understand that my comment is shown, word for word, to the people who "
                    "read the results of my team."
                ),
            )

    def _scale(self, question: Question) -> list[tuple[int, str]]:
        assert question.scale_min is not None and question.scale_max is not None
        values = list(range(question.scale_min, question.scale_max + 1))
        labels = question.labels_in(self.language)
        if len(labels) == len(values):
            return [(v, f"{label}") for v, label in zip(values, labels, strict=True)]
        return [(v, str(v)) for v in values]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("comment") and not cleaned.get("comment_confirmed"):
            self.add_error(
                "comment_confirmed",
                _("Please confirm that you want to send this comment, or empty the comment box."),
            )
        return cleaned

    # --- to the service ---------------------------------------------------------------------

    def answers(self) -> dict[int, int | None]:
        result: dict[int, int | None] = {}
        for question in self.questions:
            raw = self.cleaned_data.get(field_name_for(question)) or ""
            result[question.pk] = None if raw in ("", PREFER_NOT_TO_SAY) else int(raw)
        return result

    def comment(self) -> str | None:
        return (self.cleaned_data.get("comment") or "").strip() or None

    def add_service_errors(self, fields: dict[str, list[str]]) -> None:
        """Put the service's per-item problems next to their items (keys are question ids)."""
        by_id = {str(q.pk): field_name_for(q) for q in self.questions}
        for key, messages in fields.items():
            name = by_id.get(key) or (
                "comment" if key == "comment" and "comment" in self.fields else None
            )
            for message in messages:
                self.add_error(name, message)

    # --- to the template --------------------------------------------------------------------

    def items(self) -> list[Item]:
        items = []
        for question in self.questions:
            name = field_name_for(question)
            chosen = str(self.data.get(name, "")) if self.is_bound else ""
            items.append(
                Item(
                    field_name=name,
                    question_id=question.pk,
                    text=question.text_in(self.language),
                    options=[
                        Option(value=str(value), label=str(label), html_id=f"{name}-{value}")
                        for value, label in self.choices[name]
                    ],
                    required=question.required,
                    chosen=chosen,
                    errors=[str(e) for e in self.errors.get(name, [])],
                )
            )
        return items

    def error_summary(self) -> list[tuple[str, str]]:
        """(anchor, message) pairs in page order, for the summary at the top."""
        anchors: list[tuple[str, str]] = []
        for name in self.fields:
            for message in self.errors.get(name, []):
                target = f"{name}-legend" if name.startswith("q") else f"id_{name}"
                if self.choices.get(name):
                    target = f"{name}-{self.choices[name][0][0]}"
                anchors.append((target, f"{self.fields[name].label}: {message}"))
        for message in self.non_field_errors():
            anchors.append(("checkin-form", str(message)))
        return anchors
