"""schedule: the no-show visit state

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-03 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("scheduled", "waiting", "in_call", "ended", "cancelled")
_NEW = (*_OLD, "no_show")


def _check(states: tuple[str, ...]) -> str:
    return "state IN ({})".format(", ".join(f"'{s}'" for s in states))


def _replace(states: tuple[str, ...]) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table (a no-op copy elsewhere).
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_visits_visit_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_visits_visit_state"), _check(states))


def upgrade() -> None:
    _replace(_NEW)


def downgrade() -> None:
    op.execute("UPDATE visits SET state = 'cancelled' WHERE state = 'no_show'")
    _replace(_OLD)
