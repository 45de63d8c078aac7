import time
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from generations import storage
from generations.catalogue import HUNYUAN_RAPID, MAX_PROMPT_LENGTH
from generations.models import Generation


class Command(BaseCommand):
    help = (
        "Submit a generation through the same pipeline as the web form. With --wait, block "
        "until it is final and print its state and the stored model's path."
    )

    def add_arguments(self, parser):
        parser.add_argument("prompt")
        parser.add_argument("--user", default="member", help="owner's username")
        parser.add_argument("--pbr", action="store_true", help="ask for PBR materials")
        parser.add_argument("--wait", action="store_true", help="block until final")
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")

    def handle(self, *args, prompt, user, pbr, wait, timeout, **options):
        prompt = prompt.strip()
        if not prompt or len(prompt) > MAX_PROMPT_LENGTH:
            raise CommandError(f"The prompt must be 1-{MAX_PROMPT_LENGTH} characters.")
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user named {user!r} (run `manage.py seed_demo`?).")
        generation = Generation.objects.create_queued(
            owner=owner,
            provider=HUNYUAN_RAPID.key,
            mode="text",
            prompt=prompt,
            options={"enable_pbr": pbr},
            form_token=uuid.uuid4(),
        )
        total = generation.credit_estimate
        self.stdout.write(f"generation {generation.pk} queued ({total} credits)")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            generation.refresh_from_db()
            if generation.is_final or generation.state == "needs_attention":
                break
            time.sleep(1.0)
        else:
            raise CommandError(
                f"generation {generation.pk} still {generation.state} after {timeout:g} s"
            )
        self.stdout.write(f"state: {generation.state}")
        model = generation.glb_asset
        if model is not None:
            self.stdout.write(f"file: {storage.describe(model.file)}")
        if generation.state != "finished":
            reason = generation.failure_reason or generation.attention_reason
            raise CommandError(f"generation {generation.pk} ended {generation.state}: {reason}")
