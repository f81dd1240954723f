from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated

from api import health, metrics_state
from api.authentication import JWTAuthentication

# Swagger UI and the schema are for integrators (the brief asks for petstore-like docs): open
# by default. API_DOCS_PUBLIC=false asks for a JWT or an admin sign-in instead. Either way the
# operations themselves need a token: paste one into Authorize to try them out.
if settings.API_DOCS_PUBLIC:
    schema_view = SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[])
    docs_view = SpectacularSwaggerView.as_view(
        url_name="schema", authentication_classes=[], permission_classes=[]
    )
else:
    schema_view = SpectacularAPIView.as_view(
        authentication_classes=[JWTAuthentication, SessionAuthentication],
        permission_classes=[IsAuthenticated],
    )
    docs_view = login_required(
        SpectacularSwaggerView.as_view(url_name="schema"), login_url="/admin/login/"
    )

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_state.metrics_view, name="metrics"),
    path("", RedirectView.as_view(url="/docs/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", schema_view, name="schema"),
    path("api/schema", schema_view),
    path("api/", include("api.urls")),
    re_path(r"^docs/?$", docs_view, name="docs"),
    path("oidc/", include("api.sso.urls")),  # single sign-on for the admin (404 when off)
]
