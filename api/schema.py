"""OpenAPI extensions: how drf-spectacular describes this project's own classes."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class CachedUserJWTScheme(SimpleJWTScheme):
    """api.authentication.JWTAuthentication is simplejwt's bearer JWT on the wire: the same
    `jwtAuth` scheme, so Swagger UI's Authorize button takes the access token."""

    target_class = "api.authentication.JWTAuthentication"


_ERROR = {
    "type": "object",
    "description": "A JSON error: `detail` (and `code`), or the offending fields, each with a"
    " list of messages.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": True,
}
_ERRORS = {
    "400": "Invalid input: the body names each offending field (query parameters too).",
    "401": "No valid access token (or, on the token endpoints, wrong credentials or token).",
    "404": "No such object.",
    "406": "The Accept header asks for something other than JSON.",
    "409": "The campaign's state does not allow this change.",
    "413": "The body is larger than API_MAX_BODY_BYTES.",
    "415": "The body is not application/json.",
    "429": "Too many attempts from this address or at this username; see Retry-After.",
}
_TOO_LONG = {
    "description": "The request line is over 8,190 bytes: the web server refuses it before the"
    " API sees it.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}
_WRITES = {"post", "put", "patch"}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation lists the errors it can answer,
    with their JSON shape, so the schema matches what the server does (schemathesis checks it
    in the suite: api/tests/test_schemathesis.py)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = _ERROR
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = {"400", "401", "406"}
            if "{" in path:
                codes.add("404")
            if method in _WRITES:
                codes |= {"413", "415"}
            if path.startswith("/api/token"):
                codes.add("429")
            elif path.startswith(("/api/campaigns/", "/api/newsletters/")) and (
                method in _WRITES | {"delete"} and "{" in path
            ):
                codes.add("409")
            for parameter in operation.get("parameters", []):
                enum = parameter.get("schema", {}).get("enum")
                if parameter.get("in") == "query" and enum and "" not in enum:
                    enum.append("")  # an empty filter is no filter
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                existing = responses.get(code, {})
                responses[code] = {
                    "description": existing.get("description") or _ERRORS[code],
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            responses.setdefault("414", _TOO_LONG)
    _digits_may_be_integers(components)
    return result


def _digits_may_be_integers(components: dict) -> None:
    """serializers.DigitsField takes a JSON integer too: say so where the schema has one."""
    for name, component in components.items():
        if not name.startswith(("Client", "PatchedClient")):
            continue
        for field in ("phone_number", "mobile_operator_code"):
            prop = component.get("properties", {}).get(field)
            if prop and prop.get("type") == "string" and not prop.get("readOnly"):
                text = {k: v for k, v in prop.items() if k not in ("description",)}
                component["properties"][field] = {
                    "description": prop.get("description", ""),
                    "oneOf": [text, {"type": "integer", "minimum": 0}],
                }
