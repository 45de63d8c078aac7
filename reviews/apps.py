from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews, library and audit"

    def ready(self):
        from . import signals  # noqa: F401  (connects the role-change and resolution audits)
