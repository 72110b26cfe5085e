import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_says_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client, redis_url):
    from config.celery import app

    app.conf.broker_url = redis_url
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = "memory://"
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_reports_an_unreachable_broker_with_503(client):
    from config.celery import app

    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = "memory://"
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] != "ok"


@override_settings(PULSE_DEFAULT_ANONYMITY_THRESHOLD=2)
def test_system_check_refuses_k_below_three():
    from wellbeing.checks import pulse_configuration

    ids = [problem.id for problem in pulse_configuration(None)]
    assert "pulse.E001" in ids


@override_settings(ALLOWED_HOSTS=["pulse.example.com"])
def test_health_endpoints_answer_a_check_by_the_containers_own_address(client):
    # the compose health check calls http://127.0.0.1:8000/readyz, not the public host name
    alive = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    ready = client.get("/readyz", HTTP_HOST="127.0.0.1:8000")
    assert ready.status_code == 200, ready.content
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    # with the same headers as any other response
    assert ready["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in ready
    # and every other address still checks the host
    assert client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/healthz/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content
