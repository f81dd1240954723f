"""OpenAPI extensions: how drf-spectacular describes this project's own classes."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class CachedUserJWTScheme(SimpleJWTScheme):
    """api.authentication.JWTAuthentication is simplejwt's bearer JWT on the wire: the same
    `jwtAuth` scheme, so Swagger UI's Authorize button takes the access token."""

    target_class = "api.authentication.JWTAuthentication"
