"""Check-in reads for pages, the API and the admin.

Never returns answers of individual people; counts of respondents are withheld below k."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from wellbeing.models import Organisation, User

from .models import Cycle, Invitation, Question, Response, SupportResource, Survey, SurveyItem


def invitation_questions(*, invitation: Invitation) -> list[Question]:
    """The rating items this person is shown (their rotation), in survey order, then the
    free-text question when comments are enabled for the organisation."""
    shown = {int(q) for q in invitation.question_ids}
    items = (
        SurveyItem.objects.filter(survey_id=invitation.cycle.survey_id, question_id__in=shown)
        .select_related("question")
        .order_by("position")
    )
    questions = [item.question for item in items]
    comment = invitation_comment_question(invitation=invitation)
    if comment is not None and not invitation.answered:
        questions.append(comment)
    return questions


def invitation_comment_question(*, invitation: Invitation) -> Question | None:
    cycle = invitation.cycle
    if not cycle.organisation.comments_enabled:
        return None
    item = (
        SurveyItem.objects.filter(survey_id=cycle.survey_id, question__kind=Question.Kind.TEXT)
        .select_related("question")
        .first()
    )
    return item.question if item else None


def invitations_open_for_user(*, user: User, now: datetime | None = None) -> QuerySet[Invitation]:
    now = now or timezone.now()
    return (
        Invitation.objects.filter(
            user=user,
            answered=False,
            cycle__state=Cycle.State.OPEN,
            cycle__opens_at__lte=now,
            cycle__closes_at__gt=now,
        )
        .select_related("cycle", "cycle__survey", "cycle__organisation")
        .order_by("cycle__closes_at")
    )


def support_resources_for(*, organisation: Organisation) -> QuerySet[SupportResource]:
    return SupportResource.objects.filter(organisation=organisation).order_by("order", "title")


def questions_available(*, organisation: Organisation) -> QuerySet[Question]:
    return Question.objects.filter(
        Q(organisation__isnull=True) | Q(organisation=organisation), is_current=True
    ).order_by("dimension", "key")


def surveys_available(*, organisation: Organisation) -> QuerySet[Survey]:
    return Survey.objects.filter(
        Q(organisation__isnull=True) | Q(organisation=organisation),
        is_current=True,
        is_published=True,
    ).order_by("name")


def cycle_participation(*, cycle: Cycle) -> dict[str, int | float | None]:
    """Invited and responded counts for a cycle; ``responded`` and ``rate`` are None when fewer
    than k people answered (a count below k is itself a number about fewer than k people)."""
    k = cycle.organisation.anonymity_threshold
    invited = Invitation.objects.filter(cycle=cycle).count()
    responded = Invitation.objects.filter(cycle=cycle, answered=True).count()
    if responded < k:
        return {"invited": invited, "responded": None, "rate": None}
    return {"invited": invited, "responded": responded, "rate": round(responded / invited, 3)}


def cycle_response_count(*, cycle: Cycle) -> int:
    """Released responses (admin counts only)."""
    return Response.objects.filter(cycle=cycle).count()
