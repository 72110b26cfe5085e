from django.test import RequestFactory, override_settings

from config.security import client_ip


def request_with(**meta):
    request = RequestFactory().get("/")
    request.META.update(meta)
    return request


def test_without_proxies_the_forwarded_header_is_ignored():
    request = request_with(REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "10.0.0.9"


@override_settings(PULSE_TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_the_address_it_appended_is_the_client():
    # the client forged "6.6.6.6"; the proxy appended the real address last
    request = request_with(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"


@override_settings(PULSE_TRUSTED_PROXY_COUNT=2)
def test_missing_header_falls_back_to_the_socket_address():
    request = request_with(REMOTE_ADDR="10.0.0.2")
    assert client_ip(request) == "10.0.0.2"
