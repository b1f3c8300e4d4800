"""Put claimed issues back as they were seeded, so a phase never runs out of work.

At 10,000 issues the benchmark company has about 2,500 unassigned todo/backlog issues, fewer
than one checkout phase claims. After seeding, every claimable issue's row is copied into
`bench_claimable` (in the throwaway database); `restore()` writes those rows back over the ones
that changed. A worker that reaches the end of its pool restores its own slice (a few hundred
rows, milliseconds) and starts over; the driver restores everything before each phase, so the
inbox reads see the seeded ~56 rows and no phase inherits another's claims. Every column is
restored, so this follows the schema as it changes. Runs, activity rows and events written by
the claims stay, as they would in production.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

TABLE = "bench_claimable"


class Reopener:
    def __init__(self, url: str, issue_ids: list[str]):
        self.url = url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE {} AS SELECT * FROM issues_issue WHERE id = ANY(%s)").format(
                    sql.Identifier(TABLE)
                ),
                [issue_ids],
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(sql.Identifier(TABLE))
            )
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(TABLE)))
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
                    [TABLE],
                )
            ]
        target = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        source = sql.SQL(", ").join(sql.Identifier("s", c) for c in columns)
        current = sql.SQL(", ").join(sql.Identifier("i", c) for c in columns)
        # Only the rows a phase changed are written: a full restore touches a few thousand rows,
        # not the whole snapshot.
        self.sql = sql.SQL(
            "UPDATE issues_issue AS i SET ({target}) = ({source}) FROM {table} AS s "
            "WHERE i.id = s.id AND ({current}) IS DISTINCT FROM ({source})"
        ).format(target=target, source=source, current=current, table=sql.Identifier(TABLE))
        self.some = self.sql + sql.SQL(" AND s.id = ANY(%s)")

    def restore(self, conn: psycopg.Connection | None = None, ids: list[str] | None = None) -> int:
        """Write the seeded rows back over the changed ones (only `ids` when given); answers
        how many rows were restored."""
        if conn is None:
            with psycopg.connect(self.url, autocommit=True) as own:
                return self.restore(own, ids)
        cur = conn.execute(self.sql) if ids is None else conn.execute(self.some, [ids])
        return cur.rowcount
