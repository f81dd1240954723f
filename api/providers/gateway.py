"""The gateway's address and credentials, checked once when a provider is built.

A bad `SMS_GATEWAY_URL` or `SMS_GATEWAY_TOKEN` is a configuration error: it stops the worker at
start-up with a message naming the variable, instead of failing every message one by one. The
token's value never appears in an error.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from yarl import URL


@dataclass(frozen=True)
class GatewayTarget:
    """Where and how to POST: `send_url(id)` is `{SMS_GATEWAY_URL}/send/{id}` (query kept)."""

    base: URL
    prefix: str  # the encoded scheme://host[:port]/path, without a trailing slash
    query: str  # the encoded query string ("" or "?a=b")
    authorization: str | None
    ssl_context: ssl.SSLContext | None
    proxy: str | None

    def send_url(self, message_id: int) -> URL:
        return URL(f"{self.prefix}/send/{message_id}{self.query}", encoded=True)


def _reject_control_characters(name: str, value: str, *, secret: bool = False) -> None:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        shown = "" if secret else f" ({value!r})"
        raise ImproperlyConfigured(f"{name} contains a control character (CR, LF, ...){shown}")


def build_gateway_target(url: str, token: str, *, ca_bundle: str = "") -> GatewayTarget:
    """Check the settings and prepare what every request needs; ImproperlyConfigured if bad."""
    base, port = _checked_url(url)
    _check_token(token)
    encoded = str(base.with_query(None).with_fragment(None))
    return GatewayTarget(
        base=base,
        prefix=encoded.rstrip("/"),
        query=f"?{base.raw_query_string}" if base.raw_query_string else "",
        authorization=f"Bearer {token}" if token else None,
        ssl_context=_ssl_context(base, ca_bundle),
        proxy=_proxy_for(base, port),
    )


def _checked_url(url: str) -> tuple[URL, int | None]:
    if not url:
        raise ImproperlyConfigured("SMS_GATEWAY_URL is not set")
    _reject_control_characters("SMS_GATEWAY_URL", url)
    try:
        base = URL(url.strip())
        port = base.port
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"SMS_GATEWAY_URL is not a valid URL: {exc}") from exc
    if base.scheme not in ("http", "https"):
        raise ImproperlyConfigured(
            f"SMS_GATEWAY_URL must start with http:// or https:// (got {base.scheme or 'none'!r})"
        )
    if not base.host:
        raise ImproperlyConfigured("SMS_GATEWAY_URL has no host")
    if base.fragment:
        raise ImproperlyConfigured("SMS_GATEWAY_URL must not have a #fragment")
    return base, port


def _check_token(token: str) -> None:
    if token:
        _reject_control_characters("SMS_GATEWAY_TOKEN", token, secret=True)
        if token != token.strip() or not token.isascii():
            raise ImproperlyConfigured(
                "SMS_GATEWAY_TOKEN must be printable ASCII without surrounding spaces"
            )


def _ssl_context(base: URL, ca_bundle: str) -> ssl.SSLContext | None:
    if base.scheme != "https":
        return None
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise ImproperlyConfigured(f"SMS_GATEWAY_CA_BUNDLE: no such file {ca_bundle!r}")
    try:  # verification stays on; a bundle only adds the CAs to trust
        return ssl.create_default_context(cafile=ca_bundle or None)
    except ssl.SSLError as exc:
        raise ImproperlyConfigured(f"SMS_GATEWAY_CA_BUNDLE is not a PEM bundle: {exc}") from exc


def _proxy_for(base: URL, port: int | None) -> str | None:
    """HTTP(S)_PROXY / NO_PROXY from the environment, resolved once (not per request)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(base.scheme)
    if not proxy:
        return None
    host = base.host if base.is_default_port() else f"{base.host}:{port}"
    if urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxy
