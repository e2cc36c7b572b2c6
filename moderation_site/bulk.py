"""Many new rows of one model at once: PostgreSQL's COPY, ``bulk_create`` elsewhere.

``bulk_create`` makes a model instance per row and prepares every field of every row in
Python. Importing a 20,000-row hash list (a content and an entry per row) into a bank of
2 million entries, that Python work was most of the time: 4,600 entries/s, under the
public API's aim of 5,000 on a slow machine. ``insert_rows`` prepares the fields shared by
every row once, from one unsaved instance (its defaults, ``auto_now_add``, foreign keys),
reserves the ids from the table's sequence in one query, and sends the rows with COPY.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models

PLAIN = (str, int, float, bool)  # what COPY takes as it is (None too)


def insert_rows(model: type[models.Model], prototype: models.Model, rows: Sequence[dict]) -> list:
    """Insert one row per dict of `rows`: the prototype's values, with the dict's over them
    (keys are attribute names, ``content_id`` for a foreign key). A plain str, int, float,
    bool or None goes to the database as it is; any other value (a dict for a JSONField) is
    prepared by its field, row by row. Returns the new primary keys in the order of `rows`.
    """
    if not rows:
        return []
    connection = connections[model.objects.db]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if connection.vendor != "postgresql":
        shared = {f.attname: getattr(prototype, f.attname) for f in fields}
        made = model.objects.bulk_create(model(**{**shared, **row}) for row in rows)
        return [obj.pk for obj in made]
    shared = {
        f.attname: f.get_db_prep_save(f.pre_save(prototype, add=True), connection) for f in fields
    }
    by_name = {f.attname: f for f in fields}
    pk = model._meta.pk
    table = model._meta.db_table
    names = [pk.attname, *(f.attname for f in fields)]
    columns = ", ".join(
        connection.ops.quote_name(c) for c in [pk.column, *(f.column for f in fields)]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(table), pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        copy_sql = f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN"
        # The raw psycopg cursor's COPY, its errors as Django's (IntegrityError, ...).
        with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
            for new_id, row in zip(ids, rows, strict=True):
                values = {**shared, pk.attname: new_id}
                for name, value in row.items():
                    if value is not None and not isinstance(value, PLAIN):
                        value = by_name[name].get_db_prep_save(value, connection)
                    values[name] = value
                copy.write_row([values[name] for name in names])
    return ids
