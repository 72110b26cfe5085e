"""HTML edges of the check-in: the one-time link, the employee form, thanks, my check-ins and
the "what we store about you" page.

Thin: parse input, call ``checkins.services``/``selectors``, render.  Never logs, echoes or
redirects with a token; every check-in page is ``no-store`` so answers do not sit in caches.

The one-time link (``/checkin/t/<token>/``) works in two steps.  A GET only *checks* the link
and shows a "Start check-in" button: mail scanners and link previews fetch links before the
person does, and must not use them up.  The button POSTs to the same address, which uses the
link (single use), rotates the session key (no fixation), keeps the invitation's public id in
the session for a short while and a signed snapshot of what its submit needs (never the token)
in a cookie of the same lifetime, then redirects to the token-free ``/checkin/answer/``.  The
snapshot lists the questions the person was shown, which would pick their response out of the
team's: it stays in their browser, not in the session's row, and the submit deletes it.
That POST is CSRF-exempt on purpose: the 256-bit token in its URL already proves it came from
the link, and ``Referrer-Policy: no-referrer`` (which keeps the token out of Referer headers)
makes browsers send ``Origin: null``, which Django's CSRF check would refuse.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from wellbeing.errors import ServiceError
from wellbeing.languages import reading_language
from wellbeing.models import Organisation, User

from . import ratelimit
from .forms import CheckinForm
from .models import Cycle, Invitation, Question
from .selectors import (
    checkin_from_snapshot,
    checkin_snapshot,
    checkin_with_questions,
    invitation_for_checkin,
    invitation_questions,
    invitations_open_for_user,
    support_resources_for,
)
from .services import (
    checkin_submit,
    checkin_submit_quick,
    invitation_for_user,
    invitation_from_token,
)

logger = logging.getLogger("pulse.checkins.web")

SESSION_KEY = "pulse_checkin"
SNAPSHOT_COOKIE = "pulse_checkin_form"
SNAPSHOT_SALT = "pulse.checkin.snapshot"
#: How long a started check-in stays usable in the browser (capped by the cycle's close).
SESSION_LIFETIME = timedelta(hours=2)


# --- helpers ----------------------------------------------------------------------------------


def _private(response: HttpResponse, *, no_referrer: bool = False) -> HttpResponse:
    add_never_cache_headers(response)  # includes no-store
    if no_referrer:
        response["Referrer-Policy"] = "no-referrer"
    return response


def _render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    language: str | None = None,
    no_referrer: bool = False,
) -> HttpResponse:
    language = language or translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(language):
        response = render(request, template, context, status=status)
    response["Content-Language"] = language
    return _private(response, no_referrer=no_referrer)


#: code -> (HTTP status, title, kind explanation) for every way a check-in cannot go ahead.
PROBLEMS: dict[str, tuple[int, Any, Any]] = {
    "unknown": (
        404,
        _("This link does not work"),
        _(
            "The link may be incomplete or mistyped. Copy the whole link from your invitation, "
            "or sign in to see your check-ins."
        ),
    ),
    "used": (
        409,
        _("This link has already been used"),
        _(
            "Each check-in link works once, so that nobody else can use it. If you have already "
            "answered: thank you, there is nothing more to do. If you started but did not "
            "finish, sign in and open “My check-ins” to answer from there."
        ),
    ),
    "already_received": (
        409,
        _("We already have your answers"),
        _(
            "Thank you, your check-in has been received. Answers cannot be changed afterwards, "
            "because they are not linked to you."
        ),
    ),
    "closed": (
        410,
        _("This check-in has closed"),
        _("It is no longer possible to answer this one. The next check-in will arrive as usual."),
    ),
    "expired": (
        410,
        _("This check-in has closed"),
        _("It is no longer possible to answer this one. The next check-in will arrive as usual."),
    ),
    "no_session": (
        403,
        _("Your check-in has timed out"),
        _(
            "For your privacy, a started check-in stays open in this browser for a short time "
            "only. Open the link from your latest invitation again, or sign in to see your "
            "check-ins."
        ),
    ),
    "too_large": (
        413,
        _("That was too much to send"),
        _("Nothing was saved. Please shorten your comment and send the check-in again."),
    ),
    "rate_limited": (
        429,
        _("Too many attempts"),
        _(
            "There were too many attempts with links that do not work from this network. "
            "Please wait a minute, then try the link again."
        ),
    ),
}
UNEXPECTED_PROBLEM = (
    400,
    _("Something is not right"),
    _("Nothing was saved. Please try again later."),
)


def _problem(
    request: HttpRequest,
    code: str,
    *,
    language: str | None = None,
    no_referrer: bool = False,
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """A kind page for every way a check-in cannot go ahead (never a 500)."""
    status, title, message = PROBLEMS.get(code, UNEXPECTED_PROBLEM)
    return _render(
        request,
        "checkins/problem.html",
        {"code": code, "title": title, "message": message, **(context or {})},
        status=status,
        language=language,
        no_referrer=no_referrer,
    )


def _too_many_guesses(request: HttpRequest) -> HttpResponse:
    response = _problem(request, "rate_limited", no_referrer=True)
    response["Retry-After"] = "60"
    return response


def _session_store(request: HttpRequest, response: HttpResponse, invitation: Invitation) -> None:
    until = min(timezone.now() + SESSION_LIFETIME, invitation.cycle.closes_at)
    seconds = max(1, int((until - timezone.now()).total_seconds()))
    request.session[SESSION_KEY] = {
        "invitation": str(invitation.public_id),
        "organisation": invitation.cycle.organisation_id,  # for the thanks page
        "until": until.isoformat(),
    }
    if not request.user.is_authenticated:
        request.session.set_expiry(seconds)
    # lets the submit skip reading the invitation (``_submit_from_snapshot``)
    snapshot = checkin_snapshot(invitation)
    if snapshot is not None:
        response.set_cookie(
            SNAPSHOT_COOKIE,
            signing.dumps(
                {**snapshot, "invitation": str(invitation.public_id)}, salt=SNAPSHOT_SALT
            ),
            max_age=seconds,
            path=reverse("checkins:answer"),
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )


def _snapshot_forget(response: HttpResponse) -> HttpResponse:
    response.delete_cookie(SNAPSHOT_COOKIE, path=reverse("checkins:answer"), samesite="Lax")
    return response


def _snapshot(request: HttpRequest, started: dict[str, Any]) -> dict[str, Any] | None:
    """The signed snapshot of the check-in started in this browser, when it is that one's."""
    try:
        snapshot = signing.loads(
            request.COOKIES.get(SNAPSHOT_COOKIE, ""),
            salt=SNAPSHOT_SALT,
            max_age=SESSION_LIFETIME,
        )
    except signing.BadSignature:
        return None
    if not isinstance(snapshot, dict) or snapshot.get("invitation") != started.get("invitation"):
        return None
    return snapshot


def _session_checkin(request: HttpRequest) -> dict[str, Any] | None:
    """The check-in started in this browser (``_session_store``), while the start is fresh."""
    data = request.session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    try:
        until = datetime.fromisoformat(str(data.get("until")))
    except ValueError:
        return None
    if timezone.now() >= until:
        request.session.pop(SESSION_KEY, None)
        return None
    return data


def _session_public_id(request: HttpRequest) -> object | None:
    """The public id of the invitation started in this browser, while the start is fresh."""
    data = _session_checkin(request)
    return None if data is None else data.get("invitation")


def _session_invitation(request: HttpRequest) -> Invitation | None:
    public_id = _session_public_id(request)
    return None if public_id is None else invitation_for_checkin(public_id=public_id)


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.PULSE_CHECKIN_MAX_BODY_BYTES


# --- the one-time link ------------------------------------------------------------------------


@csrf_exempt  # see the module docstring
@require_http_methods(["GET", "POST"])
def token_start(request: HttpRequest, token: str) -> HttpResponse:
    """Check the link (GET) or use it up and start a token-free session (POST)."""
    if ratelimit.token_guesses_exhausted(request):
        return _too_many_guesses(request)
    consume = request.method == "POST"
    try:
        invitation = invitation_from_token(token=token, consume=consume)
    except ServiceError as exc:
        if exc.code == "unknown":
            ratelimit.token_guess_failed(request)
        pending = _session_invitation(request)
        resume = pending is not None and not pending.answered
        return _problem(request, exc.code, no_referrer=True, context={"resume": resume})
    organisation = invitation.cycle.organisation
    language = reading_language(invitation.user, organisation)
    if not consume:
        return _render(
            request,
            "checkins/start.html",
            {"organisation": organisation, "cycle": invitation.cycle},
            language=language,
            no_referrer=True,
        )
    request.session.cycle_key()
    response = HttpResponseRedirect(reverse("checkins:answer"))
    _session_store(request, response, invitation)
    logger.info("event=checkin_link_exchanged cycle=%s", invitation.cycle.public_id)
    return _private(response, no_referrer=True)


# --- the form ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def answer(request: HttpRequest) -> HttpResponse:
    """The form for the invitation started from a link in this browser."""
    started = _session_checkin(request)
    if request.method == "POST" and started is not None and _submit_from_snapshot(request, started):
        return _snapshot_forget(_private(HttpResponseRedirect(reverse("checkins:thanks"))))
    public_id = None if started is None else started.get("invitation")
    loaded = None if public_id is None else checkin_with_questions(public_id=public_id)
    if loaded is None:
        return _problem(request, "no_session")
    invitation, questions = loaded
    return _checkin_form(
        request, invitation, action=reverse("checkins:answer"), questions=questions
    )


def _submit_from_snapshot(request: HttpRequest, started: dict[str, Any]) -> bool:
    """Store a valid submit from the invitation's snapshot in the session, without reading the
    invitation: True when stored.  Anything else (no snapshot, invalid answers, a refusal)
    changes nothing and returns False, and the caller takes the form's full path, which reads
    the invitation and names the problem in the person's language."""
    if _too_large(request):
        return False
    found = checkin_from_snapshot(_snapshot(request, started))
    if found is None:
        return False
    invitation, questions = found
    form = CheckinForm(request.POST, questions=questions, language=settings.LANGUAGE_CODE)
    if not form.is_valid():
        return False
    return checkin_submit_quick(
        invitation=invitation, answers=form.answers(), comment=form.comment(), questions=questions
    )


@login_required
@require_http_methods(["GET", "POST"])
def answer_signed_in(request: HttpRequest, cycle_id: str) -> HttpResponse:
    """The form for a signed-in person, reached from "My check-ins"."""
    assert isinstance(request.user, User)
    cycle = (
        Cycle.objects.select_related("organisation")
        .filter(public_id=cycle_id, organisation_id=request.user.organisation_id)
        .first()
    )
    language = reading_language(request.user, request.user.organisation)
    if cycle is None:
        return _problem(request, "unknown", language=language)
    try:
        invitation = invitation_for_user(user=request.user, cycle=cycle)
    except ServiceError as exc:
        return _problem(request, exc.code, language=language)
    invitation.user = request.user
    return _checkin_form(
        request, invitation, action=reverse("checkins:answer_cycle", args=[cycle.public_id])
    )


def _checkin_form(
    request: HttpRequest,
    invitation: Invitation,
    *,
    action: str,
    questions: list[Question] | None = None,
) -> HttpResponse:
    cycle = invitation.cycle
    organisation = cycle.organisation
    language = reading_language(invitation.user, organisation)
    if invitation.answered:
        return _problem(request, "already_received", language=language)
    if request.method == "POST" and _too_large(request):
        return _problem(request, "too_large", language=language)
    if questions is None:
        questions = invitation_questions(invitation=invitation)
    with translation.override(language):
        form = CheckinForm(
            request.POST if request.method == "POST" else None,
            questions=questions,
            language=language,
        )
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    checkin_submit(
                        invitation=invitation,
                        answers=form.answers(),
                        comment=form.comment(),
                        questions=questions,
                    )
                except ServiceError as exc:
                    if exc.code != "invalid":
                        return _problem(request, exc.code, language=language)
                    form.add_service_errors(exc.fields)
                else:
                    # The thanks page finds the organisation through the started check-in (or
                    # the signed-in person): the session is not written again here.
                    return _snapshot_forget(
                        _private(HttpResponseRedirect(reverse("checkins:thanks")))
                    )
            status = 400
        context = {
            "form": form,
            "items": form.items(),
            "error_summary": form.error_summary() if form.is_bound else [],
            "organisation": organisation,
            "cycle": cycle,
            "action": action,
            "has_comment": form.comment_question is not None,
            "k": organisation.anonymity_threshold,
            "comment_threshold": organisation.comment_threshold or organisation.anonymity_threshold,
        }
    return _render(request, "checkins/form.html", context, status=status, language=language)


def _thanks_organisation(request: HttpRequest, user: User | None) -> Organisation | None:
    """Whose support resources the thanks page shows: the organisation of the check-in started
    in this browser, else the signed-in person's."""
    started = request.session.get(SESSION_KEY)
    organisation_id = request.session.get("pulse_checkin_done") or (
        started.get("organisation") if isinstance(started, dict) else None
    )
    if organisation_id is None and user is not None:
        organisation_id = user.organisation_id
    if not isinstance(organisation_id, int) or isinstance(organisation_id, bool):
        return None
    return Organisation.objects.filter(pk=organisation_id).first()


@require_GET
def thanks(request: HttpRequest) -> HttpResponse:
    user = request.user if isinstance(request.user, User) else None
    organisation = _thanks_organisation(request, user)
    language = reading_language(user, organisation)
    resources = (
        list(support_resources_for(organisation=organisation)) if organisation is not None else []
    )
    return _render(
        request,
        "checkins/thanks.html",
        {"organisation": organisation, "resources": resources},
        language=language,
    )


# --- my check-ins -----------------------------------------------------------------------------


def _past_invitations(user: User, now: datetime) -> list[Invitation]:
    """The person's own earlier invitations (their participation flag only, which they know)."""
    return list(
        Invitation.objects.filter(user=user)
        .filter(
            Q(answered=True)
            | Q(cycle__state__in=[Cycle.State.CLOSED, Cycle.State.MISSED])
            | Q(cycle__closes_at__lte=now)
        )
        .select_related("cycle", "cycle__survey")
        .order_by("-cycle__opens_at")[:52]
    )


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    now = timezone.now()
    language = reading_language(request.user, request.user.organisation)
    return _render(
        request,
        "checkins/mine.html",
        {
            "open_invitations": list(invitations_open_for_user(user=request.user, now=now)),
            "past_invitations": _past_invitations(request.user, now),
        },
        language=language,
    )


# --- what we store about you ------------------------------------------------------------------


@require_GET
def privacy(request: HttpRequest) -> HttpResponse:
    user = request.user if isinstance(request.user, User) else None
    organisation = user.organisation if user is not None else None
    k = (
        organisation.anonymity_threshold
        if organisation is not None
        else settings.PULSE_DEFAULT_ANONYMITY_THRESHOLD
    )
    comment_threshold = (organisation.comment_threshold if organisation is not None else None) or k
    return _render(
        request,
        "checkins/privacy.html",
        {
            "organisation": organisation,
            "k": k,
            "comment_threshold": comment_threshold,
            "session_hours": int(SESSION_LIFETIME.total_seconds() // 3600),
            "retention_days": getattr(settings, "PULSE_RESPONSE_RETENTION_DAYS", 730),
        },
        language=reading_language(user, organisation),
    )


# --- CSRF -------------------------------------------------------------------------------------


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A friendly 403 for a missing or wrong CSRF token (``CSRF_FAILURE_VIEW``)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "error": {
                    "code": "csrf_failed",
                    "message": "The request could not be verified. Reload the page and retry.",
                    "fields": {},
                }
            },
            status=403,
        )
    response = render(request, "checkins/csrf_failure.html", status=403)
    return _private(response)
