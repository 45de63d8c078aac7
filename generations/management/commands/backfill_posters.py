"""Draw posters for finished generations that have no picture (generations/posters.py).

Run once after upgrading. A poster task lost in the last week is queued again by the beat
on its own (tasks.sweep_posters), except for models that could not be drawn; this command
tries every generation without a picture, those included (after a fix to the drawing).
Idempotent: a generation that has a thumbnail, an upstream one, a captured one or ours,
is skipped.
"""

import time

from django.core.management.base import BaseCommand
from django.db.models import Exists, OuterRef

from generations import posters
from generations.models import Asset, Generation, State


class Command(BaseCommand):
    help = "Draw a poster of every finished generation that has no thumbnail. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=0, help="At most this many (0: all).")
        parser.add_argument(
            "--seconds",
            type=float,
            default=posters.SECONDS,
            help="The time box of one poster; a model that takes longer gets none.",
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Enqueue a task per generation for the workers instead of drawing here.",
        )

    def handle(self, *args, limit, seconds, queue, **options):
        pictured = Asset.objects.filter(generation=OuterRef("pk"), role=Asset.Role.THUMBNAIL)
        missing = (
            Generation.objects.filter(state=State.FINISHED)
            .exclude(Exists(pictured))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ids = list(missing[:limit] if limit else missing)
        if queue:
            from generations.tasks import render_poster

            for pk in ids:
                render_poster.delay(pk)
            self.stdout.write(f"Queued {len(ids)} poster{'s' if len(ids) != 1 else ''}.")
            return
        made = skipped = 0
        for pk in ids:
            generation = Generation.objects.filter(pk=pk).prefetch_related("assets").first()
            if generation is None:
                continue
            started = time.monotonic()
            asset = posters.make_poster(generation, seconds=seconds)
            took = time.monotonic() - started
            if asset is None:
                skipped += 1
                self.stdout.write(f"  #{pk}: no poster ({took:.1f} s)")
            else:
                made += 1
                self.stdout.write(f"  #{pk}: poster {asset.bytes:,} bytes ({took:.1f} s)")
        self.stdout.write(f"Drew {made} poster{'s' if made != 1 else ''}; {skipped} without one.")
