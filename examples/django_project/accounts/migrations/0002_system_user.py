"""A data migration: the system user every deployment has."""

from django.db import migrations


def add_system_user(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.using(schema_editor.connection.alias).create(
        username="system", display_name="System", is_active=False, password="!"
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(add_system_user, migrations.RunPython.noop)]
