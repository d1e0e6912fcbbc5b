"""``/healthz``, ``/readyz`` and ``/metrics``: probes for orchestrators and Prometheus
(docs/operations.md#probes-and-metrics; what they reveal: docs/security.md#probes-and-metrics).

They are answered by a middleware at the very top of the stack, before any
other middleware runs, because those would turn a healthy pod into a failing
probe or add nothing a probe needs:

- ``ALLOWED_HOSTS``: kubelets and Prometheus address a pod by its IP, which is
  no configured host name (Django answers 400). These answers build nothing
  from the Host header, so it cannot poison them;
- ``SECURE_SSL_REDIRECT``: probes speak plain HTTP inside the cluster, and a
  301 to https is a failed probe;
- sessions, login, CSRF, lockouts, CSP: a probe has no cookie, no form and no
  page. Each answer gets its own headers (no caching, no sniffing, a CSP that
  allows nothing).

``/healthz`` and ``/readyz`` need no credentials and reveal only that the
process is up and which services it cannot reach. ``/metrics`` is refused
(401/403) unless the request comes from ``METRICS_ALLOWED_NETWORKS`` (default:
loopback only) or carries ``Authorization: Bearer <METRICS_TOKEN>``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from functools import lru_cache

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware

from vizsite.accounts import client_ip
from vizsite.metrics import exposition
from vizsite.readiness import readiness_report

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


# --- the answers ---------------------------------------------------------------------


def healthz(request) -> HttpResponse:
    """The process is up and answers HTTP; nothing else is checked (a liveness probe
    that failed on a database outage would have every pod restarted for nothing)."""
    return JsonResponse({"ok": True})


def readyz(request) -> HttpResponse:
    """200 when every service this process needs answers, else 503 naming the ones that do not."""
    report = readiness_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def metrics(request) -> HttpResponse:
    """Prometheus text format of every process sharing PROMETHEUS_MULTIPROC_DIR."""
    refused = metrics_refusal(request)
    if refused is not None:
        return refused
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


# --- who may read /metrics -------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _allowed(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False  # no address (a unix socket), or not one: not allowed
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports ::ffff:127.0.0.1
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def _from_allowed_network(request) -> bool:
    """Both the socket peer and the client (as logins see it, through TRUSTED_PROXY_COUNT
    proxies) are in METRICS_ALLOWED_NETWORKS. The peer too: a request sent straight to
    the pod with a made-up X-Forwarded-For would otherwise pass as whatever it claims;
    and a request through the reverse proxy passes only if its client is allowed."""
    return _allowed(request.META.get("REMOTE_ADDR", "")) and _allowed(client_ip(request))


def _bearer(request) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics_refusal(request) -> HttpResponse | None:
    """None when the request may read the metrics: it comes from an allowed network, or
    it carries the token. Else 401 (a token is configured: present it) or 403."""
    token = settings.METRICS_TOKEN
    presented = _bearer(request)
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return None
    if _from_allowed_network(request):
        return None
    if token:
        response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="pipelens-metrics"'
        return response
    return HttpResponse("Metrics are not served to this address.\n", status=403, content_type="text/plain")


# --- the middleware ----------------------------------------------------------------------

PROBES = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}


def _probe_for(request):
    path = request.path_info
    return PROBES.get(path.rstrip("/") if len(path) > 1 else path)


def _answer(view, request) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
    else:
        response = view(request)
    for name, value in _HEADERS.items():
        response[name] = value
    return response


@sync_and_async_middleware
def probe_middleware(get_response):
    """Answer the probe paths here (first in MIDDLEWARE); pass everything else on."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            view = _probe_for(request)
            if view is None:
                return await get_response(request)
            # On a thread of the loop's default pool, not Django's single thread for
            # sync views: a /readyz waiting on a dead service delays no page.
            return await asyncio.to_thread(_answer, view, request)

    else:

        def middleware(request):
            view = _probe_for(request)
            if view is None:
                return get_response(request)
            return _answer(view, request)

    return middleware
