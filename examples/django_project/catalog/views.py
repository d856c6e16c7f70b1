import json
from decimal import Decimal

from audit.models import AuditEntry
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404

from .models import Category, Product


def health(request):
    return JsonResponse({"ok": True})


def whoami(request):
    user = request.user
    return JsonResponse({"username": user.get_username() if user.is_authenticated else None})


def categories(request):
    return JsonResponse({"categories": sorted(Category.objects.values_list("name", flat=True))})


def products(request):
    if request.method == "GET":
        rows = Product.objects.select_related("category").order_by("name")
        return JsonResponse({"products": [{"name": p.name, "category": p.category.name} for p in rows]})
    if request.method == "POST":
        body = json.loads(request.body)
        category = get_object_or_404(Category, name=body["category"])
        product = Product.objects.create(category=category, name=body["name"], price=Decimal(body["price"]))
        AuditEntry.objects.create(action="product.create", detail=product.name)
        return JsonResponse({"id": product.pk}, status=201)
    return HttpResponseNotAllowed(["GET", "POST"])


def product_detail(request, pk):
    product = get_object_or_404(Product, pk=pk)
    return JsonResponse({"name": product.name, "price": str(product.price)})
