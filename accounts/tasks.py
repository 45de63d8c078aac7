from importlib import import_module

from celery import shared_task
from django.conf import settings


@shared_task
def clear_expired_sessions():
    """Delete the sessions whose time has run out (what ``manage.py clearsessions`` does).
    Nothing reads them: Django refuses an expired session when it is read."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
