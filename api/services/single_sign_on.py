"""Admin accounts behind single sign-on: one Django user per (issuer, subject), its staff and
superuser flags following the provider's groups at every sign-in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import SingleSignOnIdentity


@dataclass(frozen=True)
class AdminAccess:
    staff: bool
    superuser: bool


def claimed_groups(value) -> set[str]:
    """The groups claim as a set: providers send a list, some a space-separated string."""
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list | tuple):
        return {str(group) for group in value}
    return set()


def admin_access(groups: set[str]) -> AdminAccess:
    """OIDC_SUPERUSER_GROUP makes a superuser (and staff), OIDC_STAFF_GROUP staff."""
    superuser = bool(settings.OIDC_SUPERUSER_GROUP) and settings.OIDC_SUPERUSER_GROUP in groups
    staff = superuser or (bool(settings.OIDC_STAFF_GROUP) and settings.OIDC_STAFF_GROUP in groups)
    return AdminAccess(staff=staff, superuser=superuser)


def sign_in(*, issuer: str, subject: str, groups: set[str], email: str, username: str):
    """The user to sign in for this verified identity, or None: not in a staff group (its
    flags are then taken away), or deactivated here. Creates the user (no usable password) on
    a first sign-in with access. Safe to repeat; two first sign-ins at once make one user."""
    access = admin_access(groups)
    identity = _identity(issuer, subject)
    if identity is None:
        if not access.staff:
            return None  # no account for someone the provider gives no admin access
        identity = _create_identity(issuer, subject, email=email, username=username)
    user = identity.user
    user.is_staff, user.is_superuser = access.staff, access.superuser
    if email:
        user.email = email
    user.save(update_fields=["is_staff", "is_superuser", "email"])
    if not (access.staff and user.is_active):
        return None
    SingleSignOnIdentity.objects.filter(pk=identity.pk).update(last_login_at=timezone.now())
    return user


def _identity(issuer: str, subject: str) -> SingleSignOnIdentity | None:
    return (
        SingleSignOnIdentity.objects.select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )


def _create_identity(issuer: str, subject: str, *, email: str, username: str):
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                _free_username(username, issuer, subject), email=email
            )  # password None: unusable, this account signs in only through the provider
            return SingleSignOnIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    except IntegrityError:
        identity = _identity(issuer, subject)  # a concurrent first sign-in made it
        if identity is None:
            raise
        return identity


def _free_username(wanted: str, issuer: str, subject: str) -> str:
    """The provider's preferred username when no one here has it, else one derived from the
    identity: a local "admin" is never reused by an SSO account of the same name."""
    user_model = get_user_model()
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:10]
    wanted = wanted[:120]
    if wanted and not user_model.objects.filter(username=wanted).exists():
        return wanted
    return f"{wanted or 'sso'}-{digest}"
