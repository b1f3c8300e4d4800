"""Reads folded into the statements a hot path sends anyway (DESIGN §12).

`update_returning` is `QuerySet.update()` that also answers the rows it changed, in the same
statement (`UPDATE ... RETURNING`, PostgreSQL and SQLite alike): a compare-and-set and the read
of its result in one round trip, with the annotations a read queryset would add.

`JSONGroupArray` aggregates rows into a JSON array in SQL (`json_group_array` on SQLite,
`jsonb_agg` on PostgreSQL), so a row can carry its many-to-many neighbours in a correlated
subquery instead of a prefetch query of its own.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, models
from django.db.models.sql import UpdateQuery


class JSONGroupArray(models.Aggregate):
    function = "JSON_GROUP_ARRAY"
    output_field = models.JSONField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # jsonb: Django reads jsonb as text and decodes it as it does for SQLite's text.
        return self.as_sql(compiler, connection, function="JSONB_AGG", **extra_context)


def update_returning(
    queryset: models.QuerySet, *, read: models.QuerySet, **values: Any
) -> list[models.Model]:
    """`queryset.update(**values)`, answering each changed row as `read` (a queryset of the same
    model, e.g. with annotations) reads it. The filters must be on the model's own table, as
    for a compare-and-set (a join would make Django update `WHERE pk IN (SELECT ...)`)."""
    model = queryset.model
    update = queryset.query.chain(UpdateQuery)
    update.add_update_values(values)
    update.annotations = {}
    update.get_initial_alias()
    if update.count_active_tables() > 1:
        raise ValueError("update_returning: the filters must not join other tables")
    db = queryset.db
    update_sql, update_params = update.get_compiler(db).as_sql()

    # The columns `read` would select, compiled as its SELECT would compile them: the model's
    # table has the same name in the UPDATE, so correlated subqueries point at the changed row.
    compiler = read.query.get_compiler(db)
    compiler.setup_query()
    select = compiler.select
    columns, params = [], []
    for _expression, (sql, sql_params), _alias in select:
        columns.append(sql)
        params.extend(sql_params)
    with connections[db].cursor() as cursor:
        cursor.execute(f"{update_sql} RETURNING {', '.join(columns)}", (*update_params, *params))
        rows = cursor.fetchall()
    converters = compiler.get_converters([expression for expression, _, _ in select])
    if converters:
        rows = list(compiler.apply_converters(rows, converters))

    start, end = compiler.klass_info["select_fields"][0], compiler.klass_info["select_fields"][-1]
    names = [column[0].target.attname for column in select[start : end + 1]]
    answered = []
    for row in rows:
        instance = model.from_db(db, names, row[start : end + 1])
        for name, position in compiler.annotation_col_map.items():
            setattr(instance, name, row[position])
        answered.append(instance)
    return answered
