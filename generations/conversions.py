"""Converting a finished generation's model to other formats.

Two ways, chosen by format:

- **Local** (OBJ zip with MTL and textures, STL, PLY): trimesh, at once, in
  the request. Free. 3MF is not offered: trimesh writes it only with networkx
  installed, a dependency we do not otherwise need.
- **Upstream** (FBX, USDZ): the convert tool (``POST /v1/tools/convert/``), an
  asynchronous, charged operation (10 credits) tracked on its ``Conversion``
  row like a small generation: a due time for the dispatcher, a claim per
  step, a hold that becomes a charge, a refund if it fails upstream. Its state
  changes are methods of ``Conversion``; the tasks ``tasks.submit_conversion``
  and ``tasks.poll_conversion`` call them.

The convert tool needs a URL it can fetch, and our storage is private. So we
send the upstream's own result URL of the generation's model, which is
pre-signed and expires 24 hours after the upstream finished. Past that an
upstream conversion cannot be made and the member is told so; the local
formats keep working. (Serving a short-lived signed URL from our own storage
would lift this, but needs a public endpoint the upstream can reach.)
"""

import hashlib
import io
import logging
import os
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import glbfacts, ingest

log = logging.getLogger(__name__)

LOCAL_FORMATS = {"obj": "OBJ (zip with MTL and textures)", "stl": "STL", "ply": "PLY"}
UPSTREAM_FORMATS = {"fbx": "FBX (upstream, 10 credits)", "usdz": "USDZ (upstream, 10 credits)"}
# The convert tool's price, as the upstream publishes it. Not a generation, so not in the
# catalogue's price table.
UPSTREAM_PRICE = 10
CONVERT_ENDPOINT = "/v1/tools/convert/"
# Result URLs expire 24 hours after the upstream made them; leave a margin for
# the queue in front of the convert tool.
SOURCE_URL_LIFETIME = timedelta(hours=23)
# The stored format of each conversion's file (OBJ comes zipped with its MTL and textures).
STORED_FORMAT = {"obj": "zip", "stl": "stl", "ply": "ply", "fbx": "fbx", "usdz": "usdz"}


class ConversionRefused(Exception):
    """A conversion that cannot be made; ``message`` is for the member."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def label(fmt):
    return {**LOCAL_FORMATS, **UPSTREAM_FORMATS}.get(fmt, fmt.upper())


def source_url(generation, now=None):
    """The upstream URL of the generation's model, or None once it has expired."""
    now = now or timezone.now()
    done = generation.upstream_done_at or generation.finished_at
    if done is None or now - done > SOURCE_URL_LIFETIME:
        return None
    results = generation.results or []
    for wanted in (".glb", ".zip"):
        for result in results:
            if ingest.url_extension(result.get("url", "")) == wanted:
                return result["url"]
    for result in results:
        if result.get("asset_type") in {"3D_MODEL", "ARCHIVE"}:
            return result["url"]
    return None


def _existing(generation, fmt):
    from .models import Conversion

    return Conversion.objects.filter(
        generation=generation, kind=Conversion.Kind.CONVERT, output_format=fmt
    ).first()


def request_body(url, conversion):
    """The convert tool's JSON body for ``conversion`` of the model at ``url``."""
    return {"model_url": url, "output_format": conversion.output_format}


def request(generation, fmt, user):
    """Start (or return the existing) conversion of ``generation`` to ``fmt``."""
    from .models import State

    if generation.state != State.FINISHED or generation.glb_asset is None:
        raise ConversionRefused("Only a finished generation with a model can be converted.")
    existing = _existing(generation, fmt)
    if existing is not None and existing.state != State.FAILED:
        return existing
    if fmt in LOCAL_FORMATS:
        return convert_locally(generation, fmt, user, existing)
    if fmt in UPSTREAM_FORMATS:
        if existing is not None:
            raise ConversionRefused(
                f"The {fmt.upper()} conversion failed: {existing.failure_reason}"
            )
        return request_upstream(generation, fmt, user)
    raise ConversionRefused(f"{fmt} is not a format we convert to.")


# --- local ---------------------------------------------------------------------------------


def convert_locally(generation, fmt, user, existing=None):
    from .models import Asset, Conversion, IllegalTransition, State

    if existing is None:
        try:
            with transaction.atomic():
                conversion = Conversion.objects.create(
                    generation=generation,
                    requested_by=user,
                    output_format=fmt,
                    via=Conversion.Via.LOCAL,
                    state=State.INGESTING,
                )
        except IntegrityError:
            # A second click while the first converts: show the first.
            return _existing(generation, fmt)
    else:
        # Try a failed local conversion again; of two clicks, one does it.
        try:
            existing.retry_locally()
        except IllegalTransition:
            return _existing(generation, fmt)
        conversion = existing
    try:
        with generation.glb_asset.file.open("rb") as fh:
            source = fh.read()
        compressed = glbfacts.compression(source)
        if compressed:
            conversion.mark_failed(
                f"This version's geometry is {compressed[0]}-compressed (as Optimize for the "
                f"web makes it), which the converter here cannot read, so it cannot become "
                f"{fmt.upper()}. Convert the version it was made from instead."
            )
            return conversion
        data = export(source, fmt)
    except Exception as exc:  # noqa: BLE001 - trimesh fails in many ways; the member sees one
        log.warning("generation %s: local %s conversion failed: %r", generation.pk, fmt, exc)
        conversion.mark_failed(f"The model could not be converted to {fmt.upper()}.")
        return conversion
    stored_format = STORED_FORMAT[fmt]
    path = _write_temp(data, stored_format)
    name = ingest.store(path, generation.pk, stored_format)
    with transaction.atomic():
        asset = Asset.objects.create(
            generation=generation,
            role=Asset.Role.CONVERTED,
            file=name,
            format=stored_format,
            original_name=f"conversion:{fmt}:{conversion.pk}",
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        conversion.mark_finished(asset)
    return conversion


def _write_temp(data, suffix):
    fd, tmp = tempfile.mkstemp(dir=ingest.incoming_dir(), suffix=f".{suffix}.part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(tmp)


def export(glb_bytes, fmt):
    """The bytes of ``fmt`` for a GLB: an OBJ zip (OBJ + MTL + textures), STL or PLY."""
    import trimesh
    from trimesh.exchange.obj import export_obj

    scene = trimesh.load(io.BytesIO(glb_bytes), file_type="glb", force="scene")
    if not scene.geometry:
        raise ValueError("the model has no geometry")
    if fmt == "obj":
        text, files = export_obj(
            scene, include_texture=True, return_texture=True, mtl_name="model.mtl"
        )
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("model.obj", text)
            for filename, content in files.items():
                # trimesh names the files itself; keep them flat inside the zip.
                archive.writestr(os.path.basename(filename), content)
        return out.getvalue()
    # STL and PLY hold one mesh: the scene with its transforms applied.
    mesh = scene.to_geometry()
    data = mesh.export(file_type=fmt)
    return data.encode() if isinstance(data, str) else data


# --- upstream ------------------------------------------------------------------------------


def request_upstream(generation, fmt, user, now=None):
    """Queue a charged conversion through the convert tool, holding its price."""
    from . import pricing
    from .models import Conversion, State

    now = now or timezone.now()
    if source_url(generation, now) is None:
        raise ConversionRefused(
            f"{fmt.upper()} comes from the upstream's convert tool, which can read the model "
            "only within 24 hours of it being made. Download OBJ, STL or PLY instead."
        )
    left = pricing.remaining_budget(generation.owner)
    if left is not None and left < UPSTREAM_PRICE:
        raise ConversionRefused(
            f"A {fmt.upper()} conversion costs {UPSTREAM_PRICE} credits and only {left} "
            "are left this month."
        )
    from .tasks import submit_conversion

    try:
        with transaction.atomic():
            conversion = Conversion.objects.create(
                generation=generation,
                requested_by=user,
                output_format=fmt,
                via=Conversion.Via.UPSTREAM,
                state=State.QUEUED,
                credit_estimate=UPSTREAM_PRICE,
                due_at=now,
            )
            conversion.hold(f"held for {fmt} conversion of generation {generation.pk}")
            transaction.on_commit(lambda: submit_conversion.delay(conversion.pk), robust=True)
    except IntegrityError:
        return _existing(generation, fmt)
    return conversion
