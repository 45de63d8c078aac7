from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Generations"

    def ready(self):
        from studio_dashboard import dataversion

        # Any saved or deleted row the pages show makes their cached fragments old.
        for signal in (post_save, post_delete, m2m_changed):
            signal.connect(dataversion.bump_on_save, dispatch_uid="studio-data-version")
