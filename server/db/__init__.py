"""Metadata database: engine, tables and repository functions (each takes a session)."""

from server.db.engine import Database

__all__ = ["Database"]
