"""The OpenID Connect authentication backend: token checks here, account rules in the service."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from api.services import single_sign_on

from . import sso_enabled

logger = logging.getLogger(__name__)


class AdminSingleSignOnBackend(OIDCAuthenticationBackend):
    """Signs in the user linked to the ID token's (issuer, subject), never one found by
    e-mail; listed in AUTHENTICATION_BACKENDS always, inert while single sign-on is off."""

    def __init__(self, *args, **kwargs):
        # The library reads (and insists on) its endpoints here; Django builds a backend for
        # every password login too, which must work when single sign-on is not configured.
        if sso_enabled():
            super().__init__(*args, **kwargs)
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if not sso_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        # Django's rule, which the library's override drops: a user deactivated here loses an
        # open session at its next request.
        return ModelBackend.get_user(self, user_id)

    def verify_token(self, token, **kwargs):
        """The library checks the signature, expiry and nonce; the issuer and the audience
        are checked here (it leaves the audience unchecked)."""
        payload = super().verify_token(token, **kwargs)
        expected_issuer = settings.OIDC_OP_ISSUER
        if expected_issuer and payload.get("iss") != expected_issuer:
            raise SuspiciousOperation("ID token from an unexpected issuer")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        if str(claims.get("sub")) != str(payload.get("sub")):
            raise SuspiciousOperation("userinfo answered for another subject")
        user = single_sign_on.sign_in(
            issuer=str(payload["iss"]),
            subject=str(payload["sub"]),
            groups=single_sign_on.claimed_groups(claims.get(settings.OIDC_GROUPS_CLAIM)),
            email=str(claims.get("email") or ""),
            username=str(claims.get("preferred_username") or ""),
        )
        if user is None:
            logger.warning("single sign-on refused for subject of %s", payload["iss"])
        return user
