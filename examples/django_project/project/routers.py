"""The audit app lives in the "other" database; every other app in "default"."""


class AuditRouter:
    def db_for_read(self, model, **hints):
        return "other" if model._meta.app_label == "audit" else "default"

    def db_for_write(self, model, **hints):
        return "other" if model._meta.app_label == "audit" else "default"

    def allow_relation(self, obj1, obj2, **hints):
        return (obj1._meta.app_label == "audit") == (obj2._meta.app_label == "audit") or None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == ("other" if app_label == "audit" else "default")
