import pytest
from catalog.models import Category


@pytest.fixture(scope="session")
def category_names_at_start(django_db_setup, django_db_blocker):
    """Read once per session from the test database, through django_db_blocker."""
    with django_db_blocker.unblock():
        return sorted(Category.objects.values_list("name", flat=True))


@pytest.fixture
def books(db):
    return Category.objects.get(name="books")
