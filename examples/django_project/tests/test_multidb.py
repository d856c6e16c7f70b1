"""Two aliases: the audit app's table lives in "other" (project.routers.AuditRouter)."""

from decimal import Decimal

import pytest
from audit.models import AuditEntry
from catalog.models import Category, Product
from django.db import connections


@pytest.mark.django_db(databases=["default", "other"])
def test_both_databases_in_one_test():
    Product.objects.create(category=Category.objects.get(name="music"), name="Kind of Blue", price=Decimal("12"))
    AuditEntry.objects.create(action="product.create", detail="Kind of Blue")
    assert AuditEntry.objects.count() == 1
    assert connections["other"].settings_dict["NAME"] != connections["default"].settings_dict["NAME"]


@pytest.mark.django_db(databases=["default", "other"])
def test_the_other_database_is_rolled_back_too():
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_transactional_on_both_databases():
    AuditEntry.objects.create(action="tx")
    Category.objects.create(name="tx-both")
    assert AuditEntry.objects.filter(action="tx").count() == 1


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_transactional_on_both_databases_starts_clean():
    assert not AuditEntry.objects.filter(action="tx").exists()
    assert not Category.objects.filter(name="tx-both").exists()


@pytest.mark.django_db(databases="__all__")
def test_all_databases():
    AuditEntry.objects.create(action="all")
    assert AuditEntry.objects.using("other").count() == 1


@pytest.mark.django_db
def test_an_undeclared_database_is_refused():
    with pytest.raises(Exception, match="not allowed"):
        AuditEntry.objects.count()


@pytest.mark.django_db(databases=["other"])
def test_the_audit_table_is_only_in_other():
    tables = connections["other"].introspection.table_names()
    assert "audit_auditentry" in tables and "catalog_product" not in tables
