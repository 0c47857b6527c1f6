"""The published API contract: every operation documents its request body and its success response."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from configs import Settings
from server.app import create_app

# Operations of a body-carrying method that take no body.
BODYLESS = {
    ("post", "/kbs/{kb}/rebuild"),
    ("post", "/kbs/{kb}/files/{file_name}/reingest"),
}
BODY_METHODS = {"post", "put", "patch"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    settings = Settings(paths={"data_root": tmp_path_factory.mktemp("openapi")})
    app = create_app(settings)
    # Read over HTTP, as a client generator would (no lifespan: nothing is started).
    return TestClient(app).get("/openapi.json").json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def resolve(spec, schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def documented(spec, schema):
    """Whether a JSON schema says what the body holds (not an empty or free-form object)."""
    schema = resolve(spec, schema)
    if not schema:
        return False
    if "anyOf" in schema or "oneOf" in schema:
        return all(documented(spec, s) for s in schema.get("anyOf", schema.get("oneOf")))
    if schema.get("type") == "array":
        return documented(spec, schema.get("items") or {})
    if schema.get("type") == "object":
        extra = schema.get("additionalProperties")
        return bool(schema.get("properties")) or (isinstance(extra, dict) and documented(spec, extra))
    return "type" in schema or "enum" in schema or "const" in schema


def test_every_operation_that_takes_a_body_documents_it(spec):
    missing = []
    for method, path, operation in operations(spec):
        if method not in BODY_METHODS or (method, path) in BODYLESS:
            continue
        content = (operation.get("requestBody") or {}).get("content") or {}
        schemas = [media.get("schema") or {} for media in content.values()]
        if not schemas or not all(documented(spec, s) for s in schemas):
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"no documented request body: {missing}"


def test_every_operation_documents_its_success_response(spec):
    missing = []
    for method, path, operation in operations(spec):
        successes = {code: r for code, r in operation["responses"].items() if code in ("200", "201")}
        if not successes:
            if "204" not in operation["responses"]:
                missing.append(f"{method.upper()} {path}: no 200, 201 or 204 response")
            continue
        for code, response in successes.items():
            content = response.get("content") or {}
            if not content:
                missing.append(f"{method.upper()} {path}: {code} without content")
            for media, body in content.items():
                # A stream documents each of its events (OpenAPI 3.2's itemSchema), a body the whole of it.
                schema = body.get("itemSchema") or body.get("schema") or {}
                binary = media != "application/json" and schema.get("type") == "string"
                if not (binary or documented(spec, schema)):
                    missing.append(f"{method.upper()} {path}: {code} {media} schema {schema}")
    assert not missing, "undocumented responses:\n" + "\n".join(missing)


def test_the_main_chat_route_shows_its_body_and_both_answers(spec):
    operation = spec["paths"]["/chat/{mode}"]["post"]
    body = resolve(spec, operation["requestBody"]["content"]["application/json"]["schema"])
    assert "query" in body["properties"] and "query" in body["required"]
    answers = operation["responses"]["200"]["content"]
    assert resolve(spec, answers["application/json"]["schema"])["title"] == "ChatResult"
    assert "text/event-stream" in answers


def test_errors_are_documented_in_their_real_shape(spec):
    operation = spec["paths"]["/conversations"]["post"]
    error = resolve(spec, operation["responses"]["422"]["content"]["application/json"]["schema"])
    assert set(error["properties"]) == {"error"}
