"""Formerly installed row-change NOTIFY triggers on the sessions, generations, users and permissions tables, for a per-process cache of
query answers that has since been removed. A fresh database needs nothing here; a
database that ran the old version has them dropped by 0004. (An app's migrations touch
only its own tables.)
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("generations", "0007_web_speed_indexes"),
    ]

    operations = []
