from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework_simplejwt.authentication import JWTAuthentication

# The schema is part of the API, so it needs a JWT like every other route; a person signed in
# to /admin/ may read it too, which is how the Swagger UI at /docs/ loads it.
schema_view = SpectacularAPIView.as_view(
    authentication_classes=[JWTAuthentication, SessionAuthentication],
    permission_classes=[IsAuthenticated],
)
docs_view = login_required(
    SpectacularSwaggerView.as_view(url_name="schema"), login_url="/admin/login/"
)

urlpatterns = [
    path("", RedirectView.as_view(url="/docs/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", schema_view, name="schema"),
    path("api/schema", schema_view),
    path("api/", include("api.urls")),
    re_path(r"^docs/?$", docs_view, name="docs"),
]
