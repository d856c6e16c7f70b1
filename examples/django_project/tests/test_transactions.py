"""transactional_db tests: real commits, real rollbacks, and what each test finds at its start."""

from decimal import Decimal

import pytest
from audit.models import AuditEntry
from catalog.models import Category, Product
from django.db import IntegrityError, connection, transaction


def test_a_transactional_test_commits_for_real(transactional_db):
    with transaction.atomic():
        Category.objects.create(name="committed")
    assert not connection.in_atomic_block
    assert Category.objects.filter(name="committed").exists()


def test_the_next_transactional_test_does_not_see_it(transactional_db):
    assert not Category.objects.filter(name="committed").exists()


def test_a_failed_atomic_block_leaves_nothing(transactional_db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.create(name="dup")
        Category.objects.create(name="dup")
    assert not Category.objects.filter(name="dup").exists()


def test_on_commit_runs_at_the_commit(transactional_db):
    ran = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("sent"))
        assert ran == []
    assert ran == ["sent"]


@pytest.mark.django_db(transaction=True)
def test_the_marker_with_transaction_true():
    category = Category.objects.create(name="tx-mark")
    Product.objects.create(category=category, name="Tx", price=Decimal("1"))
    assert Product.objects.filter(category__name="tx-mark").count() == 1


@pytest.mark.django_db(transaction=True, reset_sequences=True, databases=["other"])
def test_reset_sequences_starts_ids_at_one():
    assert AuditEntry.objects.create(action="first").pk == 1


@pytest.mark.django_db(transaction=True, reset_sequences=True, databases=["other"])
def test_reset_sequences_again_after_another_test_wrote():
    AuditEntry.objects.create(action="a")
    assert AuditEntry.objects.create(action="b").pk == 2


def test_django_db_reset_sequences_fixture(django_db_reset_sequences):
    # Product has no rows after the migrations: its reset sequence starts at 1 (the category gets an id
    # of its own: after a reset, a table with migrated rows would hand out an id they already use)
    category = Category.objects.create(pk=1000, name="sequence")
    assert Product.objects.create(category=category, name="Seq", price=Decimal("1")).pk == 1
