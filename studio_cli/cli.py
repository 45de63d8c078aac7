"""The ``studio`` commands: generate, batch, status, download, cancel, concept,
concept-model, finish."""

import base64
import csv
import shutil
import sys
import time
import zipfile
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import ApiError, Client

FINAL = {"finished", "failed", "canceled", "needs_attention"}
POLL_SECONDS = 2.0
# A batch is one request a poll whatever its size, well under a token's rate.
BATCH_POLL_SECONDS = 3.0

err = Console(stderr=True, soft_wrap=True)
out = Console()


def _client(ctx):
    return ctx.obj["client"]()


@click.group()
@click.option("--url", envvar="STUDIO_URL", help="The dashboard's address (STUDIO_URL).")
@click.option("--token", envvar="STUDIO_TOKEN", help="A personal API token (STUDIO_TOKEN).")
@click.pass_context
def main(ctx, url, token):
    """Generate 3D models on Studio Dashboard from the command line."""
    ctx.obj = {"client": lambda: Client(url, token)}


def following(what):
    """--wait, --out (to download ``what``) and --timeout, for a command that queues one job."""

    def decorate(command):
        for option in (
            click.option("--timeout", type=float, default=3600, show_default=True,
                         help="Seconds to wait."),
            click.option("--out", "-d", type=click.Path(file_okay=False),
                         help=f"Download {what} here."),
            click.option("--wait", "-w", is_flag=True,
                         help="Follow it with a progress bar until it ends."),
        ):  # fmt: skip
            command = option(command)
        return command

    return decorate


def _options(pairs):
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r}: write NAME=VALUE", param_hint="--option")
        options[name.strip()] = value.strip()
    return options


def _images(paths):
    """{slot: base64} from PATH (one image) or SLOT=PATH (multi-view) arguments."""
    if len(paths) > 4:
        raise click.BadParameter("at most 4 images", param_hint="--image")
    images = {}
    for item in paths:
        slot, sep, path = item.partition("=")
        if not sep:
            slot, path = "image", item
        images[slot] = _base64(path)
    return images


def _base64(path):
    file = Path(path).expanduser()
    if not file.is_file():
        raise click.BadParameter(f"{path}: no such file", param_hint="--image")
    return base64.b64encode(file.read_bytes()).decode()


def _body(prompt, provider, mode, edition, options, images):
    body = {"provider": provider, "options": options}
    if prompt:
        body["prompt"] = prompt
    if images:
        body["images"] = images
        mode = mode or ("image" if list(images) == ["image"] else "multiview")
    if mode:
        body["mode"] = mode
    if edition:
        body["edition"] = edition
    return body


def _fail(exc, missing=None):
    """The refusal in one line; exit 2 for a refused field, 1 for anything else.

    ``missing`` replaces Django's generic 404 ("No ConceptJob matches the given query.")."""
    message = str(exc)
    if missing and exc.status == 404 and "matches the given query" in message:
        message = missing
    err.print(message, style="red", highlight=False, markup=False)
    sys.exit(2 if getattr(exc, "status", 0) == 400 else 1)


@main.command()
@click.argument("prompt", required=False)
@click.option("--provider", "-p", default="hunyuan_rapid", show_default=True)
@click.option("--mode", "-m", type=click.Choice(["text", "image", "multiview"]))
@click.option("--edition", "-e", default="", help="e.g. 3.1 for Hunyuan 3D Pro")
@click.option("--option", "-o", "option_pairs", multiple=True, help="NAME=VALUE, repeatable")
@click.option("--image", "-i", "image_paths", multiple=True, help="PATH, or SLOT=PATH for views")
@click.option("--key", help="Idempotency-Key: the same key never makes a second generation")
@following("the GLB")
@click.pass_context
def generate(
    ctx, prompt, provider, mode, edition, option_pairs, image_paths, key, wait, out, timeout
):
    """Ask for one model (text prompt or 1-4 images)."""
    body = _body(prompt, provider, mode, edition, _options(option_pairs), _images(image_paths))
    try:
        client = _client(ctx)
        generation = client.create(body, key=key)
        err.print(
            f"Generation {generation['id']} queued: {generation['credit_estimate']} credits "
            f"held, {_place(generation)}.",
            highlight=False,
        )
        if not (wait or out):
            click.echo(generation["id"])
            return
        generations = _follow(client, [generation["id"]], timeout)
        _finish(client, generations, out)
    except ApiError as exc:
        _fail(exc)


def _place(generation):
    if generation.get("queue_position"):
        return f"number {generation['queue_position']} in the queue"
    return generation["state_label"].lower()


def _follow(client, ids, timeout, fetch=None, then="`studio status` follows it"):
    """Poll each generation (or each job ``fetch`` reads) until it is final, one progress
    bar each; past ``timeout`` seconds, say how to follow it (``then``)."""
    fetch = fetch or client.generation
    deadline = time.monotonic() + timeout
    latest = {}
    columns = (
        TextColumn("#{task.fields[pk]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[words]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        tasks = {pk: progress.add_task("", total=100, pk=pk, words="queued") for pk in ids}
        while True:
            for pk in ids:
                if pk in latest and latest[pk]["state"] in FINAL:
                    continue
                generation = latest[pk] = fetch(pk)
                progress.update(
                    tasks[pk], completed=generation["progress"], words=_words(generation)
                )
            if all(g["state"] in FINAL for g in latest.values()):
                return [latest[pk] for pk in ids]
            if time.monotonic() > deadline:
                raise ApiError(0, f"Still running after {timeout:g} s; {then}.")
            time.sleep(POLL_SECONDS)


def _words(generation):
    state = generation["state"]
    if state == "queued":
        words = _place(generation)
    else:
        words = generation["state_label"].lower()
    if state in ("failed", "needs_attention"):
        words += f": {generation['failure_reason'] or generation.get('attention_reason', '')}"
    return words


def _model(generation):
    """The GLB to download: a converted preview if there is one, else the model."""
    assets = {a["role"]: a for a in generation["assets"] if a["format"] == "glb"}
    return assets.get("preview") or assets.get("model")


def _finish(client, generations, directory):
    failed = False
    for generation in generations:
        if generation["state"] != "finished":
            failed = True
            err.print(f"Generation {generation['id']} ended {_words(generation)}", highlight=False)
            continue
        if directory:
            path = _download(client, generation, directory)
            click.echo(str(path))
        else:
            click.echo(generation["page_url"])
    if failed:
        sys.exit(1)


def _download(client, generation, directory):
    asset = _model(generation)
    if asset is None:
        raise ApiError(0, f"Generation {generation['id']} has no GLB stored.")
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return client.download(asset["url"], folder / f"generation-{generation['id']}.glb")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--provider", "-p", default="hunyuan_rapid", show_default=True, help="For rows naming none."
)
@click.option("--edition", "-e", default="", help="For rows naming no provider.")
@click.option(
    "--option", "-o", "option_pairs", multiple=True, help="NAME=VALUE for rows without it"
)
@click.option("--wait", "-w", is_flag=True, help="Follow every row until it ends.")
@click.option("--out", "-d", type=click.Path(file_okay=False), help="Download the GLBs here.")
@click.option("--timeout", type=float, default=6 * 3600, show_default=True)
@click.pass_context
def batch(ctx, file, provider, edition, option_pairs, wait, out, timeout):
    """Queue one generation per CSV row: every row, or none.

    Columns: prompt, image (a file beside the CSV), provider, mode, edition; any other
    column is an option of that name. The dashboard checks and prices every row first:
    if one has errors they are shown and nothing is queued; a budget too short for the
    whole batch queues nothing either.
    """
    path = Path(file)
    options = "\n".join(f"{k}={v}" for k, v in _options(option_pairs).items())
    fields = {"provider": provider, "edition": edition, "options": options}
    try:
        client = _client(ctx)
        draft = _upload_batch(client, path, fields)
        bad = [row for row in draft["rows"] if row["errors"]]
        for row in bad:
            for field, messages in row["errors"].items():
                err.print(
                    f"[red]Row {row['row']}:[/red] {field}: {' '.join(messages)}", highlight=False
                )
        totals = draft["totals"]
        if bad:
            err.print(
                f"{len(bad)} of {totals['rows']} rows have errors: nothing was queued.",
                highlight=False,
            )
            sys.exit(2)
        try:
            submitted = client.post(f"/api/v1/batches/{draft['id']}/submit/")
        except ApiError as exc:
            if exc.body.get("code") != "submitted":  # a retry of a submit that was taken
                raise
            submitted = client.get(f"/api/v1/batches/{draft['id']}/")
        err.print(
            f"Batch {draft['id']}: {totals['rows']} generations queued for {totals['cost']} "
            f"credits. {submitted['page_url']}",
            highlight=False,
        )
        if not (wait or out):
            click.echo(draft["id"])
            return
        done = _follow_batch(client, draft["id"], timeout)
        if out:
            for path in _download_batch(client, done, out):
                click.echo(str(path))
        else:
            click.echo(done["page_url"])
        _report_unfinished(done)
    except ApiError as exc:
        _fail(exc)


def _follow_batch(client, pk, timeout):
    """Poll the batch (one request for all its rows) until none is open, with one bar."""
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn(f"Batch #{pk}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[words]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("", total=100, words="")
        while True:
            body = client.get(f"/api/v1/batches/{pk}/")
            words = ", ".join(f"{n} {label.lower()}" for label, n in body["counts"].items())
            progress.update(task, completed=body["percent"], words=words)
            if all(item["state"] in FINAL for item in body["items"]):
                return body  # (one needing attention waits for a person: it stops here)
            if time.monotonic() > deadline:
                raise ApiError(0, f"Still running after {timeout:g} s; `studio status` follows it.")
            time.sleep(BATCH_POLL_SECONDS)


def _download_batch(client, batch, directory):
    """Every finished model of the batch, through its one ZIP, into ``directory``."""
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    archive_path = client.download(batch["zip_url"], folder / f"batch-{batch['id']}.zip")
    paths = []
    with zipfile.ZipFile(archive_path) as archive:
        for name in archive.namelist():
            if not name.endswith(".glb") or "/" in name or name.startswith("."):
                continue  # our own names only: never a path out of the folder
            target = folder / name
            with archive.open(name) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 64 * 1024)
            paths.append(target)
    archive_path.unlink()
    return paths


def _report_unfinished(batch):
    unfinished = [item for item in batch["items"] if item["state"] != "finished"]
    for item in unfinished:
        err.print(
            f"Row {item['row']}: generation {item['generation']} {item['state']}", highlight=False
        )
    if unfinished:
        sys.exit(1)


@main.command(name="download-batch")
@click.argument("pk", type=int)
@click.option("--out", "-d", type=click.Path(file_okay=False), default=".", show_default=True)
@click.pass_context
def download_batch(ctx, pk, out):
    """Download every finished model of a batch (one ZIP, unpacked)."""
    try:
        client = _client(ctx)
        batch = client.get(f"/api/v1/batches/{pk}/")
        if batch["status"] != "submitted":
            raise ApiError(0, f"Batch {pk} is a draft: nothing to download.")
        for path in _download_batch(client, batch, out):
            click.echo(str(path))
    except ApiError as exc:
        _fail(exc)


# One request carries at most this many files (the dashboard's DATA_UPLOAD_MAX_NUMBER_FILES).
FILES_PER_REQUEST = 8


def _upload_batch(client, path, fields):
    """The CSV and the images it names into a draft batch, in as many requests as needed."""
    raw = path.read_bytes()
    names = []
    for record in csv.DictReader(raw.decode("utf-8-sig").splitlines()):
        name = (record.get("image") or "").strip()
        if name and name not in names:
            names.append(name)
    images = []
    for name in names:
        if "/" in name or "\\" in name:
            raise ApiError(0, f"{name}: write the image's file name only, beside the CSV.")
        image = path.parent / name
        if not image.is_file():
            raise ApiError(0, f"{path.name} names {name}, which is not beside it.")
        images.append(image)
    parts = [images[: FILES_PER_REQUEST - 1]]
    parts += [
        images[i : i + FILES_PER_REQUEST]
        for i in range(FILES_PER_REQUEST - 1, len(images), FILES_PER_REQUEST)
    ]
    draft = None
    for n, part in enumerate(parts):
        files = [
            ("images", (image.name, image.read_bytes(), "application/octet-stream"))
            for image in part
        ]
        more = {"more": "true"} if n < len(parts) - 1 else {}
        if draft is None:
            files.insert(0, ("sheet", (path.name, raw, "text/csv")))
            draft = client.upload("/api/v1/batches/", {**fields, **more}, files)
        else:
            draft = client.upload(f"/api/v1/batches/{draft['id']}/", {**fields, **more}, files)
    return draft


@main.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--wait", "-w", is_flag=True, help="Follow them until they end.")
@click.pass_context
def status(ctx, ids, wait):
    """Your recent generations, or the ones named."""
    try:
        client = _client(ctx)
        if wait and ids:
            _follow(client, list(ids), 24 * 3600)
            return
        generations = [client.generation(pk) for pk in ids] if ids else client.mine()
        table = Table("ID", "State", "Progress", "Provider", "Credits", "Prompt")
        for g in generations:
            table.add_row(
                str(g["id"]),
                _words(g),
                f"{g['progress']}%",
                g["provider_label"],
                str(g["credit_estimate"]),
                (g["prompt"] or "")[:40],
            )
        out.print(table)
    except ApiError as exc:
        _fail(exc)


@main.command()
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--out", "-d", type=click.Path(file_okay=False), default=".", show_default=True)
@click.pass_context
def download(ctx, ids, out):
    """Download the GLB of finished generations."""
    try:
        client = _client(ctx)
        for pk in ids:
            generation = client.generation(pk)
            if generation["state"] != "finished":
                raise ApiError(0, f"Generation {pk} is {_words(generation)}: nothing to download.")
            click.echo(str(_download(client, generation, out)))
    except ApiError as exc:
        _fail(exc)


@main.command()
@click.argument("ids", nargs=-1, type=int, required=True)
@click.pass_context
def cancel(ctx, ids):
    """Cancel generations that were not sent upstream yet (their holds are released)."""
    try:
        client = _client(ctx)
        for pk in ids:
            client.cancel(pk)
            err.print(f"Generation {pk} canceled; its hold is released.", highlight=False)
    except ApiError as exc:
        _fail(exc)


# --- images first: concept jobs ------------------------------------------------------------


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", "image_model", default="gemini_31_flash", show_default=True)
@click.option("--count", "-n", type=click.IntRange(1, 4), default=2, show_default=True)
@click.option("--option", "-o", "option_pairs", multiple=True, help="NAME=VALUE, repeatable")
@click.option("--image", "-i", "image_paths", multiple=True, help="An image to edit (up to 4)")
@click.option("--edit-of", type=int, help="A concept image id to edit again")
@click.option("--key", help="Idempotency-Key: the same key never makes a second job")
@following("the images")
@click.pass_context
def concept(
    ctx, prompt, image_model, count, option_pairs, image_paths, edit_of, key, wait, out, timeout
):
    """Ask for 1-4 concept images of PROMPT (or edits of images), to pick one to model.

    Prints the job's id; with --wait, the ids of its images (one a line) for
    `studio concept-model JOB --pick ID`; with --out, the downloaded files, each named
    concept-JOB-IMAGE_ID.
    """
    if len(image_paths) > 4:
        raise click.BadParameter("at most 4 images", param_hint="--image")
    body = {"image_model": image_model, "prompt": prompt, "count": count}
    body["options"] = _options(option_pairs)
    if image_paths:
        body["images"] = [_base64(path) for path in image_paths]
    if edit_of:
        body["edit_of"] = edit_of
    try:
        client = _client(ctx)
        job = client.concept(body, key=key)
        err.print(
            f"Concept job {job['id']} queued: {job['count']} {job['image_model_label']} "
            f"image(s), {job['credit_estimate']} credits held.",
            highlight=False,
        )
        if not (wait or out):
            click.echo(job["id"])
            return
        then = f"its page follows it: {job['page_url']}"
        [job] = _follow(client, [job["id"]], timeout, fetch=client.concept_job, then=then)
        if job["state"] != "finished":
            raise ApiError(0, f"Concept job {job['id']} ended {_words(job)}")
        for image in job["images"]:
            if out:
                click.echo(str(_download_concept_image(client, job, image, out)))
            else:
                click.echo(image["id"])
        err.print(
            f"Model one: studio concept-model {job['id']} --pick IMAGE_ID --provider PROVIDER",
            highlight=False,
        )
    except ApiError as exc:
        _fail(exc)


def _download_concept_image(client, job, image, directory):
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    extension = {"jpeg": "jpg"}.get(image["format"], image["format"])
    return client.download(image["url"], folder / f"concept-{job['id']}-{image['id']}.{extension}")


def _picks(values, mode):
    """(image, views) of --pick IMAGE_ID (one image) or SLOT=IMAGE_ID (multi-view views)."""
    image, views = None, {}
    for value in values:
        slot, sep, pk = value.rpartition("=")
        if not pk.strip().isdigit():
            raise click.BadParameter(
                f"{value!r}: write IMAGE_ID or SLOT=IMAGE_ID", param_hint="--pick"
            )
        if sep:
            views[slot.strip()] = int(pk)
        elif image is None and mode != "multiview":
            image = int(pk)
        else:
            raise click.BadParameter(
                "multi-view takes one pick a view: write SLOT=IMAGE_ID (e.g. front=12)",
                param_hint="--pick",
            )
    if image is not None and views:
        raise click.BadParameter(
            "one IMAGE_ID, or views as SLOT=IMAGE_ID: not both", param_hint="--pick"
        )
    return image, views


@main.command(name="concept-model")
@click.argument("job", type=int)
@click.option(
    "--pick", "picks", multiple=True, required=True, help="IMAGE_ID, or SLOT=IMAGE_ID per view"
)
@click.option("--provider", "-p", required=True, help="A provider that takes images")
@click.option("--edition", "-e", help="e.g. 3.1 for Hunyuan 3D Pro")
@click.option("--mode", type=click.Choice(["image", "multiview"]), help="Default: by the picks")
@click.option("--key", help="Idempotency-Key: the same key never makes a second generation")
@following("the GLB")
@click.pass_context
def concept_model(ctx, job, picks, provider, edition, mode, key, wait, out, timeout):
    """Make a 3D model of picked concept images of JOB (image-to-3D or multi-view)."""
    image, views = _picks(picks, mode)
    body = {"provider": provider}
    if image is not None:
        body["image"] = image
    if views:
        body["views"] = views
    if edition is not None:
        body["edition"] = edition
    if mode:
        body["mode"] = mode
    try:
        client = _client(ctx)
        generation = client.concept_model(job, body, key=key)
        err.print(
            f"Generation {generation['id']} queued from concept job {job}: "
            f"{generation['credit_estimate']} credits held, {_place(generation)}.",
            highlight=False,
        )
        if not (wait or out):
            click.echo(generation["id"])
            return
        _finish(client, _follow(client, [generation["id"]], timeout), out)
    except ApiError as exc:
        _fail(exc, missing=f"No concept job {job} that you may see.")


# --- finishing a model ---------------------------------------------------------------------


@main.command()
@click.argument("generation", type=int)
@click.argument("step")
@click.option("--option", "-o", "option_pairs", multiple=True, help="NAME=VALUE, repeatable")
@click.option("--key", help="Idempotency-Key: the same key never asks twice")
@following("the result")
@click.pass_context
def finish(ctx, generation, step, option_pairs, key, wait, out, timeout):
    """Finish a model: STEP is remesh, texture, repair, optimize or render.

    The step's options are the page's fields, e.g. remesh: -o polygons=quads -o
    face_limit=20000; texture: -o prompt="worn leather"; render: -o angle=front. Its
    result is a new version of the model: with --wait its page, with --out its GLB (or
    a render's images).
    """
    try:
        client = _client(ctx)
        job = client.finish(generation, step, _options(option_pairs), key=key)
        err.print(
            f"Step {job['id']} ({job['kind']}) of generation {generation} queued: "
            f"{job['credits']} credits held.",
            highlight=False,
        )
        if not (wait or out):
            click.echo(job["id"])
            return
        then = f"it goes on: {job['url']}"
        [job] = _follow(
            client, [job["id"]], timeout, fetch=lambda pk: client.get(job["url"]), then=then
        )
        if job["state"] != "finished" or not job["new_version"]:
            raise ApiError(0, f"Step {job['id']} ({job['kind']}) ended {_words(job)}")
        version = client.generation(job["new_version"])
        renders = [a for a in version["assets"] if a["role"] == "render"]
        if out and renders:
            for asset in renders:
                click.echo(str(_download_render(client, version, asset, out)))
            return
        _finish(client, [version], out)
    except ApiError as exc:
        _fail(exc, missing=f"No generation {generation} that you may see.")


def _download_render(client, generation, asset, directory):
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    extension = {"jpeg": "jpg"}.get(asset["format"], asset["format"])
    name = f"generation-{generation['id']}-render-{asset['id']}.{extension}"
    return client.download(asset["url"], folder / name)
