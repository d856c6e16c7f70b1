from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The project's own user model (AUTH_USER_MODEL), with a display name."""

    display_name = models.CharField(max_length=100, blank=True)

    def __str__(self):
        return self.display_name or self.username
