"""The API's operations as the OpenAPI schema lists them (drf-spectacular, the schema served at
/api/schema/): the security proofs are generated from it, so an endpoint added later is
covered without anyone remembering to list it."""

from __future__ import annotations

import re
from functools import cache

WRITE_METHODS = ("post", "put", "patch")


@cache
def api_schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def is_public(operation: dict) -> bool:
    """No security requirement, or an empty one (anonymous allowed) among them."""
    security = operation.get("security")
    return not security or {} in security


def operations(*, public: bool | None = None, methods=None) -> list[tuple[str, str]]:
    """(method, schema path) of every operation, filtered by public-ness and method."""
    found = []
    for path, by_method in api_schema()["paths"].items():
        for method, operation in by_method.items():
            if methods is not None and method not in methods:
                continue
            if public is not None and is_public(operation) != public:
                continue
            found.append((method, path))
    return sorted(found)


def concrete_path(path: str, ids: dict[str, int], *, default_id: int = 1) -> str:
    """The schema path with each `{param}` filled: the id of a real row of that resource
    (`ids` by the path's first segment, "clients", "campaigns", ...) or `default_id`."""
    resource = path.strip("/").split("/")[1] if path.count("/") > 2 else ""
    return re.sub(r"\{[^}]+\}", str(ids.get(resource, default_id)), path)


def response_read_only_fields(method: str, path: str) -> set[str]:
    """The fields the operation's success response marks readOnly (id, status, timestamps)."""
    schema = api_schema()
    operation = schema["paths"][path][method]
    found: set[str] = set()
    for code, response in operation.get("responses", {}).items():
        if not code.startswith("2"):
            continue
        for content in response.get("content", {}).values():
            ref = content.get("schema", {}).get("$ref", "")
            component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
            found |= {
                name
                for name, prop in component.get("properties", {}).items()
                if prop.get("readOnly")
            }
    return found
