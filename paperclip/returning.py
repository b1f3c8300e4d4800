"""Reads folded into the statements a hot path sends anyway (DESIGN §12).

`update_returning` is `QuerySet.update()` that also answers the rows it changed, in the same
statement (`UPDATE ... RETURNING`, PostgreSQL and SQLite alike): a compare-and-set and the read
of its result in one round trip, with the annotations a read queryset would add.

`JSONGroupArray` aggregates rows into a JSON array in SQL (`json_group_array` on SQLite,
`jsonb_agg` on PostgreSQL), so a row can carry its many-to-many neighbours in a correlated
subquery instead of a prefetch query of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.models.sql import UpdateQuery


class JSONGroupArray(models.Aggregate):
    function = "JSON_GROUP_ARRAY"
    output_field = models.JSONField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # jsonb: Django reads jsonb as text and decodes it as it does for SQLite's text.
        return self.as_sql(compiler, connection, function="JSONB_AGG", **extra_context)


@dataclass(frozen=True)
class _Read:
    """A read queryset compiled to the column list of a RETURNING clause."""

    columns: str
    params: tuple
    compiler: Any  # applies the converters: values as the queryset itself would read them
    converters: dict
    names: list[str]
    fields: slice
    annotations: dict[str, int]
    model: type[models.Model]

    def instances(self, model: type[models.Model], db: str, rows: list) -> list[models.Model]:
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        answered = []
        for row in rows:
            instance = model.from_db(db, self.names, row[self.fields])
            for name, position in self.annotations.items():
                setattr(instance, name, row[position])
            answered.append(instance)
        return answered


class ReturningRead:
    """How changed rows are read back: `make()` builds the read queryset (the model's columns
    and any annotations); it is compiled once per database connection, since building and
    compiling correlated subqueries costs more than running them."""

    def __init__(self, make: Callable[[], models.QuerySet]):
        self.make = make

    def compiled(self, db: str) -> _Read:
        # Kept on the connection (one per thread): its converters are bound to it.
        cache = connections[db].__dict__.setdefault("paperclip_returning_reads", {})
        read = cache.get(id(self))
        if read is None:
            compiler = self.make().query.get_compiler(db)
            compiler.setup_query()
            select = compiler.select
            params: list = []
            for _expression, (_sql, sql_params), _alias in select:
                params.extend(sql_params)
            first, last = (
                compiler.klass_info["select_fields"][0],
                compiler.klass_info["select_fields"][-1],
            )
            read = _Read(
                # The model's table has the same name in the UPDATE, so correlated subqueries
                # point at the changed row.
                columns=", ".join(sql for _expression, (sql, _p), _alias in select),
                params=tuple(params),
                compiler=compiler,
                converters=compiler.get_converters([expression for expression, _, _ in select]),
                names=[column[0].target.attname for column in select[first : last + 1]],
                fields=slice(first, last + 1),
                annotations=dict(compiler.annotation_col_map),
                model=compiler.query.model,
            )
            cache[id(self)] = read
        return read


def update_returning(
    queryset: models.QuerySet, *, read: ReturningRead, **values: Any
) -> list[models.Model]:
    """`queryset.update(**values)`, answering each changed row as `read` reads it. The filters
    must be on the model's own table, as for a compare-and-set (a join would make Django update
    `WHERE pk IN (SELECT ...)`)."""
    update = queryset.query.chain(UpdateQuery)
    update.add_update_values(values)
    update.annotations = {}
    update.get_initial_alias()
    if update.count_active_tables() > 1:
        raise ValueError("update_returning: the filters must not join other tables")
    db = queryset.db
    update_sql, update_params = update.get_compiler(db).as_sql()
    return returning(db, update_sql, update_params, read=read, model=queryset.model)


def returning(
    db: str, sql: str, params, *, read: ReturningRead, model: type[models.Model] | None = None
) -> list[models.Model]:
    """Run the UPDATE `sql` with a RETURNING clause of what `read` reads, and answer the changed
    rows as instances of `model` (the read's own by default)."""
    compiled = read.compiled(db)
    with connections[db].cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {compiled.columns}", (*params, *compiled.params))
        rows = cursor.fetchall()
    return compiled.instances(model or compiled.model, db, rows)
