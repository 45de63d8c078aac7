"""Formerly installed NOTIFY triggers on the tables full pages read, for a per-process cache of
query answers that has since been removed. A fresh database needs nothing here; a
database that ran the old version has them dropped by 0004. (An app's migrations touch
only its own tables.)
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_row_change_notifications"),
        ("credits", "0005_filtered_most_expensive_indexes"),
        ("reviews", "0003_grant_audit_log_to_admins"),
    ]

    operations = []
