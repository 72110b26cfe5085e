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
