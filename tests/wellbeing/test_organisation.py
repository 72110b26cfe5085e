import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.factories import OrganisationFactory
from wellbeing.errors import ServiceError
from wellbeing.models import Organisation
from wellbeing.services import organisation_create

pytestmark = pytest.mark.django_db


def test_k_below_three_is_refused_by_validation():
    with pytest.raises(ServiceError) as excinfo:
        organisation_create(name="Tiny", slug="tiny", anonymity_threshold=2)
    assert "anonymity_threshold" in excinfo.value.fields
    assert not Organisation.objects.filter(slug="tiny").exists()


def test_k_below_three_is_refused_by_the_database():
    org = OrganisationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Organisation.objects.filter(pk=org.pk).update(anonymity_threshold=2)


def test_unknown_timezone_is_refused():
    org = Organisation(name="X", slug="x", timezone="Mars/Olympus")
    with pytest.raises(ValidationError) as excinfo:
        org.full_clean()
    assert "timezone" in excinfo.value.message_dict


def test_default_k_is_five():
    org = organisation_create(name="Acme", slug="acme")
    assert org.anonymity_threshold == 5


@pytest.mark.parametrize(("default_k", "comment_threshold"), [(5, 8), (8, 8), (10, 10)])
def test_a_new_organisation_takes_the_configured_defaults_whatever_k(
    settings, default_k, comment_threshold
):
    # PULSE_DEFAULT_K may be anything from 3: above 8 the comment threshold (default 8, never
    # below k) follows it, or no organisation could be created with the defaults
    settings.PULSE_DEFAULT_ANONYMITY_THRESHOLD = default_k
    settings.PULSE_DEFAULT_TIMEZONE = "Europe/Berlin"
    org = organisation_create(name="Acme", slug="acme")
    assert (org.anonymity_threshold, org.comment_threshold) == (default_k, comment_threshold)
    assert org.timezone == "Europe/Berlin"
    Organisation(name="Other", slug="other").full_clean()
