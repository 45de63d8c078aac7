"""The mixed generations the production-shape test and the pipeline benchmark queue.

One of each provider family in turn (Rapid, Tripo, TRELLIS.2 from an image, Pro),
so a run of N mixes short and long jobs, text and image input.
"""

import uuid

from generations.models import Generation

# (provider, input mode, edition, options, needs a reference image)
JOBS = [
    ("hunyuan_rapid", "text", "", {"enable_pbr": False}, False),
    ("tripo_v3", "text", "3.0", {}, False),
    ("trellis2", "image", "", {}, True),
    ("hunyuan_pro", "text", "3.0", {}, False),
]


def queue_mixed(owner, i, image):
    """Queue the ``i``-th mixed generation of ``owner`` (``image``: a cleaned upload)."""
    provider, mode, edition, options, needs_image = JOBS[i % len(JOBS)]
    return Generation.objects.create_queued(
        owner=owner,
        provider=provider,
        mode=mode,
        edition=edition,
        prompt="" if needs_image else f"a red chair number {i}",
        options=options,
        form_token=uuid.uuid4(),
        images=[("image", image)] if needs_image else [],
    )
