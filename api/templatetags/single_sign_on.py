"""{% single_sign_on_url as url %}: the admin login page's "Log in with SSO" link, or ""."""

from urllib.parse import urlencode

from django import template
from django.urls import reverse

from api.sso import sso_enabled

register = template.Library()


@register.simple_tag(takes_context=True)
def single_sign_on_url(context) -> str:
    if not sso_enabled():
        return ""
    next_url = context.get("next") or "/admin/"
    return f"{reverse('oidc_authentication_init')}?{urlencode({'next': next_url})}"
