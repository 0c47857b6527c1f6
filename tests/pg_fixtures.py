"""Pytest fixtures for tests that run on PostgreSQL: one throwaway cluster per session (tests/pg_support.py),
a fresh database per test, and ``db_url`` that runs a test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_support import Cluster, ClusterUnavailable, start_cluster

__all__ = ["ENGINES", "db_url", "pg_cluster", "pg_url"]

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL 16 cluster with pgvector on 127.0.0.1; a test that needs it fails when it cannot start."""
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        pytest.fail(f"the test PostgreSQL could not start: {exc}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty PostgreSQL database (pgvector enabled), dropped after the test."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each engine in turn: a SQLite file in tmp_path, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'info.db'}"
    return str(request.getfixturevalue("pg_url"))
