from catalog import views
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", views.health),
    path("whoami/", views.whoami),
    path("categories/", views.categories),
    path("products/", views.products),
    path("products/<int:pk>/", views.product_detail),
]
