"""Property-based API test: schemathesis sends requests generated from /openapi.json to the real app.

Every answer must be a non-5xx response that matches the schema (status code, content type, headers,
body). The model and the web search are local fakes. Generated path parameters mostly name nothing,
so each generated request is also sent once more with its path naming real things (the knowledge base
``garden``, one of its files and chunks, a stored conversation and message), except deletions, which
would take those away from the operations after them. Examples per operation are bounded.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from tests.chat_support import GARDEN_FILES, build_garden_kb, chat_settings, parse_sse

logger = logging.getLogger(__name__)
EXAMPLES_PER_OPERATION = 30
# No 5xx, and the status, content type, headers and body each as documented. Whether a schema-valid
# request is accepted is not asked: names that do not exist or are not allowed are refused with 404/422.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def client(tmp_path_factory, fake, search_engines):
    """The app, started (its lifespan runs until the module's tests are done)."""
    app = create_app(chat_settings(tmp_path_factory.mktemp("fuzz"), fake.base_url, tools=True,
                                   chat={"search": search_engines}))
    build_garden_kb(app.state.services)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def real_ids(client, fake) -> dict[str, str]:
    """Path parameter values that name things that exist."""
    file_name = next(iter(GARDEN_FILES))
    fake.queue("Turn it every two weeks [1].")
    events = parse_sse(client.post("/chat/llm", json={"query": "How often do I turn compost?"}).text)
    chunks = client.get(f"/kbs/garden/files/{file_name}/chunks").json()
    done = events[-2]
    assert done["type"] == "done", events
    return {"kb": "garden", "file_name": file_name, "doc_id": chunks[0]["doc_id"], "model_id": "fake",
            "conversation_id": done["conversation_id"], "message_id": done["message_id"], "mode": "kb"}


def test_every_operation_answers_within_its_schema(client, real_ids, fake):
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    fake.default_reply = "A short answer [1]."
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20, [op.label for op in operations]
    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            seen = statuses.setdefault(operation.label, Counter())
            seen[case.call_and_validate(checks=CHECKS).status_code] += 1
            if case.path_parameters and case.method.upper() != "DELETE":
                case.path_parameters = {name: real_ids.get(name, value) for name, value in case.path_parameters.items()}
                seen[case.call_and_validate(checks=CHECKS).status_code] += 1

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation is tried; all are reported
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    logger.info("responses per operation: %s", {label: dict(c) for label, c in statuses.items()})
    # The generated requests reach the real work, not only the validation in front of it.
    succeeded = [label for label, counts in statuses.items() if any(200 <= code < 300 for code in counts)]
    assert len(succeeded) >= 0.7 * len(operations), sorted(set(statuses) - set(succeeded))
