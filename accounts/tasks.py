from celery import shared_task


@shared_task
def clear_expired_sessions():
    """Delete the sessions whose time has run out (what ``manage.py clearsessions`` does).
    Nothing reads them: an expired session is refused when it is read."""
    from .sessions import SessionStore

    SessionStore.clear_expired()
