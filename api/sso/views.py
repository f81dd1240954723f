"""mozilla-django-oidc's login and callback views, answering 404 while single sign-on is off."""

from django.http import Http404
from django.views import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from . import sso_enabled


class SingleSignOnStartView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (state, nonce and PKCE in the
    session)."""

    def __init__(self, *args, **kwargs):
        if sso_enabled():  # the library reads its endpoints here
            super().__init__(*args, **kwargs)
        else:
            View.__init__(self, *args, **kwargs)

    def get(self, request):
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        return super().get(request)


class SingleSignOnCallbackView(OIDCAuthenticationCallbackView):
    """The provider redirects here with the code: the backend exchanges it and signs in."""

    def get(self, request):
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        return super().get(request)
