"""knowledge_file gets chunk_size, chunk_overlap and chunk_unit columns, filled from its splitter strings.

Files ingested before had their chunk parameters only inside ``splitter`` ("structure-recursive:500/50:chars");
a file whose string names none keeps NULLs, and a rebuild then uses the configured defaults.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_SPLITTER_PARAMS = re.compile(r":(\d+)/(\d+):(chars|tokens)$")
_files = sa.table(
    "knowledge_file",
    sa.column("id", sa.Integer()),
    sa.column("splitter", sa.String()),
    sa.column("chunk_size", sa.Integer()),
    sa.column("chunk_overlap", sa.Integer()),
    sa.column("chunk_unit", sa.String()),
)
_version = sa.table("schema_version", sa.column("id", sa.Integer()), sa.column("version", sa.Integer()))


def upgrade() -> None:
    with op.batch_alter_table("knowledge_file") as batch:
        batch.add_column(sa.Column("chunk_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("chunk_overlap", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("chunk_unit", sa.String(length=10), nullable=True))
    bind = op.get_bind()
    for file_id, splitter in bind.execute(sa.select(_files.c.id, _files.c.splitter)).all():
        match = _SPLITTER_PARAMS.search(splitter or "")
        if match is None:
            continue
        size, overlap = int(match.group(1)), int(match.group(2))
        bind.execute(_files.update().where(_files.c.id == file_id).values(
            chunk_size=size, chunk_overlap=overlap, chunk_unit=match.group(3)))
    bind.execute(_version.update().values(version=2))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_file") as batch:
        batch.drop_column("chunk_unit")
        batch.drop_column("chunk_overlap")
        batch.drop_column("chunk_size")
    op.get_bind().execute(_version.update().values(version=1))
