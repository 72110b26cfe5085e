"""The demo organisation: about 150 people in a three-level team tree, with leads and an admin.

Idempotent: people are keyed by e-mail and teams by (parent, name), so running it again adds
nothing.  Check-in history is added by ``checkins.demo`` on top of this.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction

from .models import Membership, Organisation, Team, TeamLead, User

DEMO_SLUG = "northwind"
DEMO_PASSWORD = "pulse-demo"  # noqa: S105 - a documented demo login, never used in production
DEMO_ADMIN_EMAIL = "admin@northwind.example"
DEMO_LEAD_EMAIL = "lead.support1@northwind.example"
DEMO_EMPLOYEE_EMAIL = "employee@northwind.example"

# (name, parent name, customer facing, direct members)
DEMO_TEAMS: tuple[tuple[str, str | None, bool, int], ...] = (
    ("Customer Experience", None, True, 0),
    ("Support Tier 1", "Customer Experience", True, 22),
    ("Support Tier 2", "Customer Experience", True, 16),
    ("Customer Success", "Customer Experience", True, 14),
    ("Sales", None, True, 0),
    ("Inside Sales", "Sales", True, 14),
    ("Field Sales", "Sales", True, 10),
    ("Product & Engineering", None, False, 0),
    ("Platform Engineering", "Product & Engineering", False, 18),
    ("Quality Assurance", "Product & Engineering", False, 11),
    ("Product Design", "Product & Engineering", False, 8),
    ("Operations", None, False, 0),
    ("Finance", "Operations", False, 8),
    ("People Operations", "Operations", False, 7),
)

FIRST_NAMES = [
    "Ada",
    "Amir",
    "Ana",
    "Ben",
    "Bea",
    "Carl",
    "Chen",
    "Dana",
    "Dev",
    "Eli",
    "Emma",
    "Farah",
    "Finn",
    "Gia",
    "Hana",
    "Ivan",
    "Iris",
    "Jon",
    "Jade",
    "Kai",
    "Lena",
    "Luis",
    "Maya",
    "Max",
    "Nia",
    "Noah",
    "Omar",
    "Olga",
    "Pia",
    "Raj",
    "Rosa",
    "Sam",
    "Sara",
    "Tom",
    "Uma",
    "Vera",
    "Wei",
    "Yara",
    "Zoe",
    "Zeke",
]
LAST_NAMES = [
    "Adler",
    "Brandt",
    "Costa",
    "Diaz",
    "Ekberg",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Meyer",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Vogel",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zimmer",
]


@dataclass(frozen=True)
class DemoLogins:
    admin: str
    lead: str
    employee: str
    password: str


def _email_slug(name: str) -> str:
    return "".join(ch for ch in name.lower().replace(" ", ".") if ch.isalnum() or ch == ".")


@transaction.atomic
def organisation_seed(
    *, today: date | None = None, progress: Callable[[str], None] | None = None
) -> tuple[Organisation, DemoLogins]:
    """Create (or find) the demo organisation with its teams, people, leads and admin."""
    today = today or date.today()
    rng = random.Random(2026)  # noqa: S311 - reproducible demo names, not security
    say = progress or (lambda message: None)
    organisation, _ = Organisation.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Northwind Services",
            "timezone": "Europe/Berlin",
            "locale": "en",
            # comments on, as an organisation trying Pulse would have them (threshold 8)
            "comments_enabled": True,
        },
    )
    password_hash = make_password(DEMO_PASSWORD)
    history_start = today - timedelta(weeks=60)

    teams: dict[str, Team] = {}
    for name, parent_name, customer_facing, _size in DEMO_TEAMS:
        parent = teams[parent_name] if parent_name else None
        team, _ = Team.objects.get_or_create(
            organisation=organisation,
            parent=parent,
            name=name,
            defaults={"customer_facing": customer_facing},
        )
        teams[name] = team
    say(f"teams: {len(teams)}")

    existing = set(User.objects.filter(organisation=organisation).values_list("email", flat=True))
    new_users: list[User] = []
    planned_members: list[tuple[str, str, date, date | None]] = []  # email, team, start, end

    def person(email: str, full_name: str, *, is_org_admin: bool = False) -> None:
        if email not in existing:
            new_users.append(
                User(
                    email=email,
                    full_name=full_name,
                    organisation=organisation,
                    is_org_admin=is_org_admin,
                    password=password_hash,
                )
            )
            existing.add(email)

    person(DEMO_ADMIN_EMAIL, "Alex Admin", is_org_admin=True)
    lead_emails: dict[str, str] = {}
    for name, _parent, _cf, _size in DEMO_TEAMS:
        email = (
            DEMO_LEAD_EMAIL
            if name == "Support Tier 1"
            else f"lead.{_email_slug(name)}@northwind.example"
        )
        lead_emails[name] = email
        person(email, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} (lead)")

    counter = 0
    for name, _parent, _cf, size in DEMO_TEAMS:
        for index in range(size):
            counter += 1
            if name == "Support Tier 1" and index == 0:
                email = DEMO_EMPLOYEE_EMAIL
            else:
                email = f"person{counter:03d}@northwind.example"
            person(email, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")
            # A little churn: a few joined recently, a few have left.
            start, end = history_start, None
            roll = rng.random()
            if roll < 0.06 and email != DEMO_EMPLOYEE_EMAIL:
                start = today - timedelta(weeks=rng.randint(2, 20))
            elif roll < 0.10 and email != DEMO_EMPLOYEE_EMAIL:
                end = today - timedelta(weeks=rng.randint(2, 20))
            planned_members.append((email, name, start, end))

    User.objects.bulk_create(new_users, batch_size=500)
    say(f"people: {len(new_users)} new, {len(existing)} in all")

    users_by_email = {
        u.email: u for u in User.objects.filter(organisation=organisation).only("id", "email")
    }
    has_membership = set(
        Membership.objects.filter(team__organisation=organisation).values_list(
            "user__email", flat=True
        )
    )
    Membership.objects.bulk_create(
        [
            Membership(user=users_by_email[email], team=teams[team], started_on=start, ended_on=end)
            for email, team, start, end in planned_members
            if email not in has_membership
        ],
        batch_size=500,
    )
    for team_name, email in lead_emails.items():
        TeamLead.objects.get_or_create(user=users_by_email[email], team=teams[team_name])
    say("memberships and leads ready")
    return organisation, DemoLogins(
        admin=DEMO_ADMIN_EMAIL,
        lead=DEMO_LEAD_EMAIL,
        employee=DEMO_EMPLOYEE_EMAIL,
        password=DEMO_PASSWORD,
    )
