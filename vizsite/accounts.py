"""Login, logout and password change, with throttling that works behind a proxy
(docs/security.md#logins).

Three limits, each with its own counter in the cache (Redis in production,
shared by every web process):

1. **one username from one address** (django-axes, ``AXES_FAILURE_LIMIT``
   failures lock that pair for ``AXES_COOLOFF_TIME``): the classic lockout;
   the account's owner elsewhere is not affected;
2. **one address, any usernames** (``LOGIN_MAX_FAILURES_PER_ADDRESS`` per
   ``LOGIN_THROTTLE_WINDOW_S``): stops password spraying from one address;
3. **one username, any addresses** (``LOGIN_MAX_FAILURES_PER_USERNAME`` per
   window): stops an attacker rotating addresses. So that a stranger cannot
   use it to lock an admin out, it does not apply to a browser that has
   logged in as that user before (a signed "known device" cookie set at each
   successful login), the device-cookie scheme OWASP recommends.

The client address comes from ``client_ip``: ``REMOTE_ADDR``, or, behind
``TRUSTED_PROXY_COUNT`` reverse proxies, the address the outermost trusted
proxy saw (the right-most entries of X-Forwarded-For are the proxies' own;
entries further left are whatever the client sent, so they are never
believed). django-axes asks the same function (``AXES_CLIENT_IP_CALLABLE``).

Password reset is not offered (no mail is configured), so its URLs are not
exposed.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import user_login_failed
from django.contrib.auth import views as auth_views
from django.core import signing
from django.core.cache import cache
from django.urls import path

DEVICE_COOKIE = "pipelens_device"
_DEVICE_SALT = "pipelens.known-device"
_DEVICE_MAX_USERS = 10


def client_ip(request) -> str:
    """The client's address, believing only the configured number of proxies."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if len(forwarded) < proxies:
        return remote  # not through the expected proxies: the socket peer is the client
    return forwarded[-proxies]


# --- counters ------------------------------------------------------------------------


def _key(kind: str, value: str) -> str:
    return f"login-fail:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def _count(kind: str, value: str) -> int:
    return int(cache.get(_key(kind, value)) or 0)


def _bump(kind: str, value: str) -> None:
    key = _key(kind, value)
    # add() starts the window; incr() never extends it.
    cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW_S)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW_S)


def _normal(username: str) -> str:
    return username.strip().lower()[:150]


def _known_usernames(request) -> set[str]:
    try:
        names = signing.loads(
            request.COOKIES.get(DEVICE_COOKIE, ""),
            salt=_DEVICE_SALT,
            max_age=settings.LOGIN_KNOWN_DEVICE_MAX_AGE_S,
        )
    except signing.BadSignature:
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def login_refusal(request, username: str) -> str | None:
    """Why this attempt is refused before any password is checked, or None."""
    minutes = max(1, settings.LOGIN_THROTTLE_WINDOW_S // 60)
    if _count("address", client_ip(request)) >= settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
        return f"Too many failed logins from your address. Try again in up to {minutes} minutes."
    name = _normal(username)
    if (
        name
        and _count("username", name) >= settings.LOGIN_MAX_FAILURES_PER_USERNAME
        and name not in _known_usernames(request)
    ):
        return (
            f"Too many failed logins for this account from many addresses. Try again in up to "
            f"{minutes} minutes, or from a browser that has logged in to it before."
        )
    return None


def _record_failure(sender, credentials, request=None, **kwargs):
    if request is None:
        return
    _bump("address", client_ip(request))
    name = _normal(str(credentials.get("username", "")))
    if name:
        _bump("username", name)


user_login_failed.connect(_record_failure, dispatch_uid="pipelens.accounts.login_failed")


class LoginView(auth_views.LoginView):
    """Django's login, refusing throttled attempts and remembering the device on success."""

    def post(self, request, *args, **kwargs):
        reason = login_refusal(request, request.POST.get("username", ""))
        if reason:
            # Unbound: a bound form would check the password while showing the refusal.
            form = self.get_form_class()(
                request=request, initial={"username": request.POST.get("username", "")[:150]}
            )
            return self.render_to_response(self.get_context_data(form=form, refusal=reason), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        names = [_normal(form.get_user().get_username())]
        names += [n for n in _known_usernames(self.request) if n not in names][: _DEVICE_MAX_USERS - 1]
        response.set_cookie(
            DEVICE_COOKIE,
            signing.dumps(names, salt=_DEVICE_SALT),
            max_age=settings.LOGIN_KNOWN_DEVICE_MAX_AGE_S,
            httponly=True,
            secure=settings.SESSION_COOKIE_SECURE,
            samesite="Lax",
        )
        return response


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]
