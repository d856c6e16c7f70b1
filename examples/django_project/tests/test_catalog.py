from decimal import Decimal

import pytest
from catalog.models import Category, Order, OrderLine, Product
from django.db import connection


def test_the_data_migration_seeded_three_categories(db):
    assert sorted(Category.objects.values_list("name", flat=True)) == ["books", "games", "music"]


def test_a_session_fixture_read_the_database_through_the_blocker(category_names_at_start, db):
    assert category_names_at_start == ["books", "games", "music"]


def test_database_access_without_a_mark_is_blocked():
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        Category.objects.count()


def test_a_product_belongs_to_a_category(books):
    product = Product.objects.create(category=books, name="Dune", price=Decimal("9.99"))
    assert list(books.products.all()) == [product]
    assert str(product) == "Dune (9.99)"


def test_an_order_totals_its_lines(books, django_user_model):
    customer = django_user_model.objects.create_user("reader")
    order = Order.objects.create(customer=customer)
    dune = Product.objects.create(category=books, name="Dune", price=Decimal("10.00"))
    emma = Product.objects.create(category=books, name="Emma", price=Decimal("2.50"))
    OrderLine.objects.create(order=order, product=dune, quantity=2)
    OrderLine.objects.create(order=order, product=emma, quantity=3)
    assert order.total() == Decimal("27.50")


@pytest.mark.django_db
class TestIsolationBetweenDbTests:
    def test_first_writes(self):
        Category.objects.create(name="first-only")
        assert Category.objects.filter(name="first-only").exists()

    def test_second_does_not_see_it(self):
        assert not Category.objects.filter(name="first-only").exists()


@pytest.mark.django_db
def test_filter_products_by_category_name():
    games = Category.objects.get(name="games")
    Product.objects.create(category=games, name="Go", price=Decimal("5"))
    assert Product.objects.filter(category__name="games").count() == 1
    assert Product.objects.filter(category__name="music").count() == 0


def test_django_assert_num_queries(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        list(Category.objects.all())


def test_the_test_database_is_not_the_one_in_the_settings(db):
    from project.settings import PREFIX

    name = str(connection.settings_dict["NAME"])
    assert name.startswith("test_") or "memorydb" in name
    assert name != PREFIX


def test_settings_fixture_overrides(settings, db):
    settings.ALLOWED_HOSTS = ["shop.example"]
    from django.conf import settings as live

    assert live.ALLOWED_HOSTS == ["shop.example"]


def test_on_commit_callbacks_are_captured(db, django_capture_on_commit_callbacks):
    from django.db import transaction

    called = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        transaction.on_commit(lambda: called.append(1))
    assert len(callbacks) == 1 and called == [1]
