from django.db import models


class AuditEntry(models.Model):
    """Kept in the "other" database (project.routers.AuditRouter)."""

    action = models.CharField(max_length=50)
    detail = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)
