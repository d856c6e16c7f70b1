import pytest
from accounts.models import User
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction


def test_the_custom_user_model_is_the_projects():
    assert get_user_model() is User


def test_a_user_is_created_with_a_display_name(db):
    user = User.objects.create_user("ada", password="pw", display_name="Ada L.")
    assert str(user) == "Ada L."
    assert user.check_password("pw")


def test_the_data_migration_made_the_system_user(db):
    system = User.objects.get(username="system")
    assert not system.is_active and not system.has_usable_password()


def test_usernames_are_unique(db):
    User.objects.create_user("grace")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("grace")
    assert User.objects.filter(username="grace").count() == 1


def test_create_superuser(db):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    assert admin.is_staff and admin.is_superuser


def test_django_user_model_fixture(django_user_model):
    user = django_user_model.objects.create_user("linus")
    assert django_user_model is User and user.pk is not None


def test_admin_user_and_client(admin_client, admin_user):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert admin_user.is_superuser


def test_force_login_whoami(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("alan"))
    assert client.get("/whoami/").json() == {"username": "alan"}


def test_anonymous_whoami(client, db):
    assert client.get("/whoami/").json() == {"username": None}


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["barbara", "edsger", "donald"])
def test_each_parametrized_test_starts_without_the_others_users(name):
    assert User.objects.exclude(username="system").count() == 0
    User.objects.create_user(name)
