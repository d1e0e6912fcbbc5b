"""Login throttling behind a proxy, per address and per username (issue 8, finding 6;
docs/security.md#logins), and the account URLs that exist."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("root", password="right-Passw0rd")


def attempt(client, username, password, *, via=None):
    extra = {"HTTP_X_FORWARDED_FOR": via} if via else {}
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_behind_the_proxy_one_address_cannot_lock_out_everyone(settings, admin):
    """Every request comes from the proxy's 127.0.0.1; the client address is the proxy's
    X-Forwarded-For entry, so a stranger's failures lock only the stranger."""
    settings.TRUSTED_PROXY_COUNT = 1
    stranger, owner = Client(), Client()
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        attempt(stranger, "root", "wrong", via="203.0.113.7")
    assert attempt(stranger, "root", "right-Passw0rd", via="203.0.113.7").status_code == 429
    assert attempt(owner, "root", "right-Passw0rd", via="198.51.100.20").status_code == 302


def test_only_the_trusted_proxys_entry_is_believed(settings, rf):
    from vizsite.accounts import client_ip

    settings.TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="127.0.0.1")
    assert client_ip(request) == "203.0.113.7"  # what the client wrote on the left is ignored
    assert client_ip(rf.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"  # no proxy header
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "127.0.0.1"  # exposed directly: the header is the client's own


def test_one_address_spraying_many_usernames_is_refused(settings, admin):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 6
    sprayer = Client()
    for i in range(6):
        assert attempt(sprayer, f"user{i}", "guess").status_code == 200
    refused = attempt(sprayer, "root", "right-Passw0rd")
    assert refused.status_code == 429 and b"Too many failed logins from your address" in refused.content
    assert attempt(Client(REMOTE_ADDR="192.0.2.9"), "root", "right-Passw0rd").status_code == 302


def test_rotating_addresses_stops_at_the_username_limit_but_not_for_a_known_browser(settings, admin):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_MAX_FAILURES_PER_USERNAME = 5
    owner = Client()
    assert attempt(owner, "root", "right-Passw0rd", via="198.51.100.20").status_code == 302
    owner.post("/accounts/logout/")
    attacker = Client()
    for i in range(5):
        assert attempt(attacker, "root", "guess", via=f"203.0.113.{i}").status_code == 200
    refused = attempt(attacker, "root", "right-Passw0rd", via="203.0.113.99")
    assert refused.status_code == 429 and b"from many addresses" in refused.content
    # The owner's browser has logged in before: it is not locked out.
    assert attempt(owner, "root", "right-Passw0rd", via="198.51.100.21").status_code == 302
    # A forged device cookie does not help.
    forger = Client()
    forger.cookies["pipelens_device"] = "root"
    assert attempt(forger, "root", "right-Passw0rd", via="203.0.113.100").status_code == 429


def test_a_refused_attempt_does_not_check_the_password(settings, admin, django_user_model):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 1
    client = Client()
    attempt(client, "nobody", "x")
    from axes.models import AccessAttempt

    before = AccessAttempt.objects.count()
    assert attempt(client, "root", "wrong").status_code == 429
    assert AccessAttempt.objects.count() == before  # axes saw no new failure: nothing was checked


@pytest.mark.parametrize(
    "url", ["/accounts/password_reset/", "/accounts/reset/MQ/set-password/", "/accounts/password_reset/done/"]
)
def test_password_reset_is_not_offered(client, url):
    assert client.get(url).status_code == 404


def test_login_logout_and_password_change_still_exist(client, admin):
    assert client.get("/accounts/login/").status_code == 200
    client.force_login(admin)
    assert client.get("/accounts/password_change/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
