from celery import shared_task

from . import notifications


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def notify():
    """Announce new finished/failed generations, then send the batched mail."""
    notifications.announce_generation_events()
    notifications.send_notification_mail()
