"""Start-up checks: a gateway misconfiguration stops `migrate`, `runserver` and the worker with
one clear error, instead of failing every message one by one."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

HTTP_PROVIDER = "api.providers.http.HttpProvider"


def gateway_settings_error() -> str | None:
    """What is wrong with SMS_GATEWAY_URL / _TOKEN / _CA_BUNDLE when the http provider is used."""
    if settings.SMS_PROVIDER != HTTP_PROVIDER:
        return None
    from api.providers.gateway import build_gateway_target

    try:
        build_gateway_target(
            settings.SMS_GATEWAY_URL,
            settings.SMS_GATEWAY_TOKEN,
            ca_bundle=settings.SMS_GATEWAY_CA_BUNDLE,
        )
    except ImproperlyConfigured as exc:
        return str(exc)
    return None


@checks.register("sms")
def check_gateway_settings(app_configs, **kwargs):
    error = gateway_settings_error()
    if error is None:
        return []
    return [checks.Error(error, hint="See .env.example (SMS_GATEWAY_*).", id="api.E001")]
