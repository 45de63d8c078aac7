from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """When a periodic process last showed it was alive.

    One row per name: ``dispatcher``, ``sweep``, ``worker:<hostname>``. Each beat
    is one UPDATE of one row (see ops.heartbeat.beat).
    """

    name = models.CharField(max_length=200, unique=True)
    beat_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
