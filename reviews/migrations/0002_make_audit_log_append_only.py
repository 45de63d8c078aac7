"""The audit log refuses UPDATE and DELETE in the database itself (PostgreSQL).

The model and its QuerySet refuse them too; the trigger also stops raw SQL, the
admin of another app, or a future bug. TRUNCATE is left alone: the test suite
empties tables with it between transactional tests.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION reviews_auditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'The audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER reviews_auditlog_append_only
    BEFORE UPDATE OR DELETE ON reviews_auditlog
    FOR EACH ROW EXECUTE FUNCTION reviews_auditlog_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS reviews_auditlog_append_only ON reviews_auditlog;
DROP FUNCTION IF EXISTS reviews_auditlog_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
