"""Finishing a model: remesh, texture edit, repair, optimize for the web, render.

Each step is an upstream job of the same kind as an upstream conversion, so it
is a ``Conversion`` row with a ``kind`` and its ``options``: the same due time,
claim, transitions, hold, charge, refund and rate budget
(``tasks.submit_conversion`` / ``tasks.poll_conversion``). What differs per step
is here: its price, whether it can run on a given model, and the request it
sends. A finished step's files become a new version of the asset: a FINISHED
``Generation`` whose ``previous_version`` is the source and whose
``made_by_step`` is the job (what was done, with which options), so it is
viewed, compared, reviewed and downloaded like any version.

Request encoding (the API reference): our stored files are private and the
upstream fetches a URL itself, so

- remesh (Tripo convert-model), texture (Tripo texture-model) and optimize send
  our stored GLB as a multipart upload: always possible;
- repair sends the upstream's own result URL while it lives (24 h), else
  uploads our file (``model_file``): always possible;
- render takes only a URL: possible only while the model's upstream result URL
  lives, and the page says so when it is not;
- remesh by Tencent's smart topology (the Hunyuan provider's own remesher) takes
  only a GLB's URL too, and answers a bare OBJ: we keep it and make the GLB the
  viewer shows from it.

Prices are the "finishing" section of the price table (the catalogue's
PRICE_TABLE holds the contract's figures, which the sandbox charges; an admin
publishes new versions, credits/prices.py): ``price`` reads the table in force,
so the form's cost, the hold and the charge are one figure.
"""

import functools
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import conversions, ingest, storage

# What each step may be asked, as the forms offer it.
RENDER_STILLS = ("3/4", "front", "back", "left", "right", "top", "isometric")
RENDER_TURNTABLES = ("turntable_4", "turntable_8", "turntable_12")


class FinishingRefused(Exception):
    """A step that cannot be asked for (or sent) now; ``message`` is for the member,
    ``code`` says why for a program: "impossible", "budget_exceeded" or "token_used"."""

    def __init__(self, message, code="impossible"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Step:
    kind: str
    label: str
    endpoint: str
    # The multipart file field when our file is uploaded; None: the step takes only a URL.
    upload_field: str | None
    # The JSON URL field, for a step that may send the upstream's result URL instead.
    url_field: str | None
    # What the new version holds: a model (GLB) or renders beside the source's model.
    makes_model: bool = True


STEPS = {
    "remesh": Step("remesh", "Remesh", "/v1/3d-models/tripo/convert-model/", "model", None),
    "texture": Step("texture", "Texture edit", "/v1/3d-models/tripo/texture-model/", "model", None),
    "repair": Step("repair", "Repair", "/v1/tools/repair/", "model_file", "model_url"),
    "optimize": Step("optimize", "Optimize for the web", "/v1/tools/optimize/", "model_file", None),
    "render": Step("render", "Render", "/v1/tools/render/", None, "model_url", makes_model=False),
}


# Remeshing per provider: Tripo's convert-model takes our file (any model); Tencent's smart
# topology takes only a URL of a GLB or OBJ and answers OBJ, FBX, STL or USDZ (we ask OBJ
# and make the GLB the viewer shows from it).
TENCENT_TOPOLOGY = "/v1/3d-models/tencent/topology/"


def price(kind, options, table=None):
    """The credits a step costs with ``options``, from ``table`` (the catalogue's
    PRICE_TABLE shape; by default the price table in force)."""
    if table is None:
        from credits.prices import active

        table = active()[1]
    prices = table["finishing"]
    if kind == "remesh" and options.get("engine") == "tencent":
        return prices["remesh"]["tencent"]
    if kind == "remesh":
        quads = prices["remesh"]["quads"] if options.get("polygons") == "quads" else 0
        return prices["remesh"]["tripo"] + quads
    if kind == "texture":
        quality = "detailed" if options.get("texture_quality") == "detailed" else "standard"
        return prices["texture"][quality]
    if kind == "repair":
        hollow = prices["repair"]["hollow"] if options.get("hollow") else 0
        return prices["repair"]["base"] + hollow
    if kind == "optimize":
        return prices["optimize"]
    if kind == "render":
        single = options.get("output") == "image" and options.get("angle") in RENDER_STILLS
        return prices["render"]["still" if single else "several"]
    raise KeyError(kind)


def _glb_url(generation, now=None):
    """The upstream's live URL of the generation's GLB (not a ZIP), or None."""
    url = conversions.source_url(generation, now)
    return url if url and ingest.url_extension(url) == ".glb" else None


def impossible(generation, kind, now=None, options=None, read_files=True):
    """Why ``kind`` (with ``options``) cannot run on ``generation`` now, in words; "" if it can.

    ``read_files=False`` (the page) trusts that a FINISHED generation has its model
    (``Generation.mark_finished`` refuses to finish one without), so showing the forms
    reads no asset rows; asking for a step always checks.
    """
    from .models import State

    if generation.state != State.FINISHED or (read_files and generation.glb_asset is None):
        return "Only a finished model can be finished further."
    if kind == "remesh" and (options or {}).get("engine") == "tencent":
        if _glb_url(generation, now) is None:
            return (
                "Tencent's smart topology is not possible for this model: it takes only a URL "
                "of a GLB, and the upstream holds no live GLB of it (its copies expire 24 hours "
                "after they are made, and our stored files are private). Tripo's remesh "
                "uploads our file instead."
            )
        return ""
    if kind == "texture" and (options or {}).get("engine") == "tencent":
        # An FBX conversion's upstream URL would do for 24 h, but we keep the file, not it.
        return (
            "Tencent's texture edit is not possible for this model: it takes only a public "
            "URL of an FBX model, and the upstream holds no live FBX of it (its copies expire "
            "24 hours after they are made, and our stored files are private). Tripo's "
            "texture edit uploads our file instead."
        )
    step = STEPS[kind]
    if step.upload_field is None and conversions.source_url(generation, now) is None:
        return (
            f"{step.label} is not possible for this model: the upstream takes only a URL it "
            "can fetch, and it holds no live copy of this model (its copies expire 24 hours "
            "after they are made, and our stored files are private). Remesh, repair or "
            "optimize it first: the new version can be rendered for 24 hours."
        )
    return ""


def request(generation, kind, options, user, form_token, now=None):
    """Queue a finishing step, holding its price; one job per form token.

    The budget is checked under lock and the hold written in one transaction
    (``credits.budgets.reserve``), as for a generation.
    """
    from credits.budgets import reserve
    from credits.prices import active

    from .models import BudgetExceeded, Conversion, State
    from .tasks import submit_conversion

    now = now or timezone.now()
    why_not = impossible(generation, kind, now, options)
    if why_not:
        raise FinishingRefused(why_not)
    version, table = active()
    cost = price(kind, options, table)
    try:
        with transaction.atomic():
            job = Conversion.objects.create(
                generation=generation,
                requested_by=user,
                kind=kind,
                options=options,
                form_token=form_token,
                output_format="png" if kind == "render" else "glb",
                via=Conversion.Via.UPSTREAM,
                state=State.QUEUED,
                credit_estimate=cost,
                price_version=version,
                due_at=now,
            )
            reserve(generation.owner, None, cost)
            job.hold(f"held for {kind} of generation {generation.pk}")
            transaction.on_commit(lambda: submit_conversion.delay(job.pk), robust=True)
    except IntegrityError:
        existing = Conversion.objects.filter(form_token=form_token).first()
        if existing is None or existing.generation_id != generation.pk:
            raise FinishingRefused(
                "This form was already used; reload the page.", "token_used"
            ) from None
        return existing
    except BudgetExceeded as exc:
        message = exc.message.replace("This generation", "This step")
        raise FinishingRefused(message, "budget_exceeded") from None
    return job


def build(job, now=None):
    """(endpoint, body, upload) for a job's submit; ``upload`` is (field, name, open) or None,
    where ``open()`` gives our stored model as (a readable stream, its size).

    Raises ``FinishingRefused`` when it cannot be sent (the source URL expired meanwhile).
    """
    step = STEPS[job.kind]
    generation = job.generation
    options = job.options
    if job.kind == "remesh" and options.get("engine") == "tencent":
        url = _glb_url(generation, now)
        if url is None:
            raise FinishingRefused(impossible(generation, job.kind, now, options))
        return TENCENT_TOPOLOGY, {"file_url": url, **_tencent_topology(options)}, None
    body = _body(job.kind, options)
    url = conversions.source_url(generation, now) if step.url_field else None
    if url is not None:
        return step.endpoint, {step.url_field: url, **body}, None
    if step.upload_field is None:
        raise FinishingRefused(impossible(generation, job.kind, now) or "The model has no URL.")
    # Opened by the client for each send and streamed from there: a model is up to
    # 200 MB, and a send after a failed one must start again from its first byte.
    opener = functools.partial(storage.open_stream, generation.glb_asset.file)
    return step.endpoint, body, (step.upload_field, "model.glb", opener)


def _tencent_topology(options):
    body = {"file_type": "GLB", "output_format": "OBJ"}
    body["polygon_type"] = "quadrilateral" if options.get("polygons") == "quads" else "triangle"
    if options.get("face_level"):
        body["face_level"] = options["face_level"]
    return body


def _body(kind, options):
    """The upstream's fields for a step's options (optional ones omitted when unset)."""
    if kind == "remesh":
        body = {"format": "GLTF", "quad": options.get("polygons") == "quads"}
        if options.get("face_limit"):
            body["face_limit"] = options["face_limit"]
        return body
    if kind == "texture":
        return {
            "prompt": options["prompt"],
            "texture_quality": options.get("texture_quality", "standard"),
            "texture": True,
            "pbr": bool(options.get("pbr", True)),
        }
    if kind == "repair":
        return {
            "output_format": "glb",
            "quality": options.get("quality", "default"),
            "hollow": bool(options.get("hollow")),
        }
    if kind == "optimize":
        body = {"preset": options.get("preset", "default")}
        if options.get("max_texture_size"):
            body["max_texture_size"] = options["max_texture_size"]
        return body
    if kind == "render":
        return {
            "output_type": options.get("output", "image"),
            "angle": options.get("angle", "3/4"),
            "resolution": options.get("resolution", 1024),
            "background": "transparent",
        }
    raise KeyError(kind)


def describe(job):
    """What a step did, in words, for the lineage line of the new version's page."""
    o = job.options
    if job.kind == "remesh" and o.get("engine") == "tencent":
        level = f"face level {o['face_level']}" if o.get("face_level") else "automatic face level"
        return f"Remeshed by Tencent's smart topology to {o.get('polygons', 'triangles')}, {level}"
    if job.kind == "remesh":
        faces = f"at most {o['face_limit']:,} faces" if o.get("face_limit") else "automatic faces"
        return f"Remeshed to {o.get('polygons', 'triangles')}, {faces}"
    if job.kind == "texture":
        return f"Retextured ({o.get('texture_quality', 'standard')}): “{o.get('prompt', '')}”"
    if job.kind == "repair":
        return f"Repaired (quality {o.get('quality', 'default')}{', hollow' if o.get('hollow') else ''})"
    if job.kind == "optimize":
        size = f", textures ≤ {o['max_texture_size']} px" if o.get("max_texture_size") else ""
        return f"Optimized for the web (preset {o.get('preset', 'default')}{size})"
    if job.kind == "render":
        what = "a turntable video" if o.get("output") == "video" else "images"
        return f"Rendered {o.get('angle', '3/4')} as {what}"
    return job.get_kind_display()


def obj_as_glb(downloaded):
    """A GLB made by trimesh from a downloaded OBJ (for the viewer), as a download of its own.

    Raises ``ingest.AssetRefused`` when the OBJ holds no geometry trimesh can read.
    """
    import hashlib
    import tempfile
    from pathlib import Path

    import trimesh

    try:
        scene = trimesh.load(str(downloaded.path), file_type="obj", force="scene")
        if not scene.geometry:
            raise ValueError("no geometry")
        data = scene.export(file_type="glb")
    except Exception as exc:  # noqa: BLE001 - trimesh fails in many ways; one refusal
        raise ingest.AssetRefused(f"The OBJ could not be read: {exc}") from None
    fd, tmp = tempfile.mkstemp(dir=ingest.incoming_dir(), suffix=".glb.part")
    with open(fd, "wb") as out:
        out.write(data)
    digest = hashlib.sha256(data).hexdigest()
    return ingest.Downloaded(Path(tmp), "glb", len(data), digest, "remeshed.glb")


def make_version(job, stored, results, now):
    """The new version a finished step's files become, and the job finished, at once.

    ``stored`` is [(Downloaded, role, original name)]: files already in our storage.
    A render's version keeps the source's model (the same stored file) beside the images.
    """
    from .models import Asset, Generation, State
    from .tasks import _store_asset

    source = job.generation
    with transaction.atomic():
        version = Generation.objects.create(
            owner=source.owner,
            provider=source.provider,
            edition=source.edition,
            mode=source.mode,
            prompt=source.prompt,
            options=source.options,
            previous_version=source,
            state=State.FINISHED,
            progress=100,
            # The step's credits are on the step (its own hold, charge, refund).
            credit_estimate=0,
            upstream_task_id=job.upstream_task_id,
            upstream_status="FINISHED",
            results=results,
            created_at=now,
            submitted_at=job.created_at,
            # Its result URLs live 24 h from now: a render of it can send them.
            upstream_done_at=now,
            finished_at=now,
            state_changed_at=now,
        )
        if not STEPS[job.kind].makes_model:
            model = source.glb_asset
            Asset.objects.create(
                generation=version,
                role=Asset.Role.MODEL,
                file=model.file.name,
                format=model.format,
                original_name="source:model",
                bytes=model.bytes,
                sha256=model.sha256,
                facts=model.facts,
            )
        for downloaded, role, name in stored:
            _store_asset(version, downloaded, role, name)
        job.mark_finished(None, result=version)
    return version
