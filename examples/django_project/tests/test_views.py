import json

import pytest
from audit.models import AuditEntry
from catalog import views
from catalog.models import Product
from django.test import RequestFactory


def test_health_needs_no_database(client):
    assert client.get("/health/").json() == {"ok": True}


def test_categories_view(client, db):
    assert client.get("/categories/").json() == {"categories": ["books", "games", "music"]}


@pytest.mark.django_db(databases=["default", "other"])
def test_post_a_product_writes_both_databases(client):
    response = client.post(
        "/products/",
        json.dumps({"category": "games", "name": "Chess", "price": "3.50"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    product = Product.objects.get(pk=response.json()["id"])
    assert product.name == "Chess"
    assert AuditEntry.objects.get().detail == "Chess"
    assert client.get(f"/products/{product.pk}/").json() == {"name": "Chess", "price": "3.50"}


def test_unknown_product_is_404(client, db):
    assert client.get("/products/999999/").status_code == 404


def test_products_view_with_request_factory(rf: RequestFactory, books):
    Product.objects.create(category=books, name="Ulysses", price="7")
    response = views.products(rf.get("/products/"))
    assert json.loads(response.content) == {"products": [{"name": "Ulysses", "category": "books"}]}


def test_put_is_not_allowed(client, db):
    assert client.put("/products/").status_code == 405
