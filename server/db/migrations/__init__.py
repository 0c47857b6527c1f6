"""Alembic migrations of kbchat's database, run by ``Database.upgrade()``; no alembic.ini is needed.

Adding a revision: change server/db/models.py, add ``versions/rNNNN_<what>.py`` (script.py.mako is its
template) whose ``down_revision`` is the newest one, raise ``models.SCHEMA_VERSION`` to NNNN and have
the revision record it, and alter tables inside ``op.batch_alter_table`` in SQL that both SQLite and
PostgreSQL accept. tests/unit/test_migrations.py checks that the migrated schema matches the models.
"""
