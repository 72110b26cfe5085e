import logging

from config.log_redaction import RedactTokensFilter, redact


def test_token_in_checkin_path_is_redacted():
    assert redact("GET /checkin/t/AbC-123_xyz/ 200") == "GET /checkin/t/[redacted]/ 200"


def test_token_in_query_string_is_redacted():
    assert redact("/api/x?token=secret&page=2") == "/api/x?token=[redacted]&page=2"
    assert redact("/go?t=secret") == "/go?t=[redacted]"


def test_ordinary_key_value_log_lines_are_untouched():
    line = "event=checkin_submitted cycle=abc result=ok"
    assert redact(line) == line


def test_filter_rewrites_formatted_records():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Gone: %s", ("/checkin/t/tok/",), None
    )
    assert RedactTokensFilter().filter(record)
    assert record.getMessage() == "Gone: /checkin/t/[redacted]/"


def test_unsubscribe_tokens_are_redacted():
    assert redact("GET /unsubscribe/eyJ1Ijo1fQ:1t:abc/ 200") == "GET /unsubscribe/[redacted]/ 200"


def test_sign_in_link_tokens_are_redacted():
    line = "GET /accounts/reset/MTI/cz1x9f-3b2c0d9e8f7a6b5c4d3e2f1a0b9c8d7e/ 302"
    assert redact(line) == "GET /accounts/reset/MTI/[redacted]/ 302"
    assert redact("GET /accounts/reset/done/ 200") == "GET /accounts/reset/done/ 200"


def test_djangos_own_loggers_write_only_through_the_redacting_handler(settings):
    # Django installs handlers of its own on ``django`` and ``django.server`` (printing under
    # DEBUG, unredacted); the project's configuration leaves those loggers none but the root's.
    for name in ("django", "django.server", "django.request"):
        logger = logging.getLogger(name)
        assert logger.handlers == []
        assert logger.propagate
    [console] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert any(isinstance(f, RedactTokensFilter) for f in console.filters)


def test_gunicorns_error_log_is_redacted():
    from gunicorn.config import Config

    from config.log_redaction import RedactingGunicornLogger

    logger = RedactingGunicornLogger(Config())
    record = logging.LogRecord(
        "gunicorn.error", logging.ERROR, __file__, 1, "Error handling request %s",
        ("/checkin/t/tok/",), None,
    )  # fmt: skip
    assert all(f.filter(record) for f in logger.error_log.filters)
    assert record.getMessage() == "Error handling request /checkin/t/[redacted]/"


def test_single_sign_on_callback_code_and_state_are_redacted():
    line = "GET /accounts/oidc/callback/?code=Xy7-abc.def&state=Qk3lL9&session_state=s1.s2 302"
    assert redact(line) == (
        "GET /accounts/oidc/callback/?code=[redacted]&state=[redacted]&session_state=[redacted] 302"
    )
    # the provider's parameters in any order, and in a request logged by Django
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Bad Request: %s",
        ("/accounts/oidc/callback/?state=abc&code=def",),
        None,
    )
    assert RedactTokensFilter().filter(record)
    assert record.getMessage() == (
        "Bad Request: /accounts/oidc/callback/?state=[redacted]&code=[redacted]"
    )


def test_gunicorns_access_log_redacts_the_single_sign_on_callback():
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from config.log_redaction import RedactingGunicornLogger

    query = "code=c0de-secret&state=st4te-secret"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/accounts/oidc/callback/?{query}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/accounts/oidc/callback/",
        "QUERY_STRING": query,
        "HTTP_REFERER": "https://idp.example.test/login?x=1&code=c0de-secret",
    }
    response = SimpleNamespace(status="302 Found", headers=[], sent=0)
    atoms = RedactingGunicornLogger(Config()).atoms(response, [], environ, timedelta(seconds=0))
    line = " ".join(str(atoms[key]) for key in ("r", "q", "{raw_uri}e", "f"))
    assert "secret" not in line
    assert "/accounts/oidc/callback/?code=[redacted]&state=[redacted]" in atoms["r"]
