"""Single sign-on for the admin: OpenID Connect through mozilla-django-oidc, off unless
OIDC_RP_CLIENT_ID (and the provider's endpoints) are set; password login stays either way.

backend.py checks the tokens and hands the verified (issuer, subject, groups) to
api/services/single_sign_on.py, which finds or creates the user; views.py and urls.py are the
library's two views, answering 404 while single sign-on is off.
"""

from django.conf import settings


def sso_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)
