"""A data migration: the shop's three categories. pytest-django's flush removes them after a
transactional test (unless serialized_rollback); dbscope's restore from the template keeps them."""

from django.db import migrations

CATEGORIES = ["books", "games", "music"]


def add_categories(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    Category.objects.using(schema_editor.connection.alias).bulk_create(Category(name=n) for n in CATEGORIES)


def remove_categories(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    Category.objects.using(schema_editor.connection.alias).filter(name__in=CATEGORIES).delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(add_categories, remove_categories)]
