"""Shared pytest set-up: fixtures from tests/fakes and the shared evaluation data path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# As kbchat's entry points do (server.knowledge_base.embeddings.use_sleeping_openmp_threads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Starlette's TestClient sends "Host: testserver"; without an API key the API answers to this machine's
# names only (server.auth.check_browser), so the tests' settings name it too.
os.environ.setdefault("KBCHAT_SERVER__ALLOWED_HOSTS", '["testserver"]')
# Tests queue the model's exact replies, and whether `auto` rewrites depends on the CPU; the tests of
# rewriting ask for it in the request or in their settings.
os.environ.setdefault("KBCHAT_CHAT__REWRITE_QUERY", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

from tests.fakes.fixtures import *  # noqa: E402,F401,F403
from tests.pg_fixtures import *  # noqa: E402,F401,F403


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public evaluation data next to the repository; tests skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA
