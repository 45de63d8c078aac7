"""The ``studio`` commands: generate, batch, status, download, cancel."""

import base64
import csv
import hashlib
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import ApiError, Client

FINAL = {"finished", "failed", "canceled", "needs_attention"}
POLL_SECONDS = 2.0
CSV_FIELDS = {"prompt", "image", "provider", "mode", "edition"}

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
        file = Path(path).expanduser()
        if not file.is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="--image")
        images[slot] = base64.b64encode(file.read_bytes()).decode()
    return images


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


def _fail(exc):
    err.print(f"[red]{exc}[/red]", highlight=False)
    sys.exit(2 if getattr(exc, "status", 0) == 400 else 1)


@main.command()
@click.argument("prompt", required=False)
@click.option("--provider", "-p", default="hunyuan_rapid", show_default=True)
@click.option("--mode", "-m", type=click.Choice(["text", "image", "multiview"]))
@click.option("--edition", "-e", default="", help="e.g. 3.1 for Hunyuan 3D Pro")
@click.option("--option", "-o", "option_pairs", multiple=True, help="NAME=VALUE, repeatable")
@click.option("--image", "-i", "image_paths", multiple=True, help="PATH, or SLOT=PATH for views")
@click.option("--key", help="Idempotency-Key: the same key never makes a second generation")
@click.option("--wait", "-w", is_flag=True, help="Follow it with a progress bar until it ends.")
@click.option("--out", "-d", type=click.Path(file_okay=False), help="Download the GLB here.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait.")
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


def _follow(client, ids, timeout):
    """Poll each generation until it is final, one progress bar each."""
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
                generation = latest[pk] = client.generation(pk)
                progress.update(
                    tasks[pk], completed=generation["progress"], words=_words(generation)
                )
            if all(g["state"] in FINAL for g in latest.values()):
                return [latest[pk] for pk in ids]
            if time.monotonic() > deadline:
                raise ApiError(0, f"Still running after {timeout:g} s; `studio status` follows it.")
            time.sleep(POLL_SECONDS)


def _words(generation):
    state = generation["state"]
    if state == "queued":
        words = _place(generation)
    else:
        words = generation["state_label"].lower()
    if state in ("failed", "needs_attention"):
        words += f": {generation['failure_reason'] or generation['attention_reason']}"
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
@click.option("--wait", "-w", is_flag=True, help="Follow every row until it ends.")
@click.option("--out", "-d", type=click.Path(file_okay=False), help="Download the GLBs here.")
@click.option("--timeout", type=float, default=6 * 3600, show_default=True)
@click.pass_context
def batch(ctx, file, wait, out, timeout):
    """Queue one generation per CSV row.

    Columns: prompt, image (a file name beside the CSV), provider, mode, edition; any
    other column is an option of that name. Each row's Idempotency-Key comes from the
    file's contents and the row number, so running the same file again queues nothing twice.
    """
    path = Path(file)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    if not rows:
        _fail(ApiError(0, f"{file} has no rows."))
    try:
        client = _client(ctx)
        ids, refused = [], 0
        for number, row in enumerate(rows, start=1):
            body = _row_body(row, path.parent)
            try:
                generation = client.create(body, key=f"batch-{digest}-{number}")
            except ApiError as exc:
                if exc.status == 0 or exc.status >= 500:
                    raise
                refused += 1
                err.print(f"[red]Row {number}:[/red] {exc}", highlight=False)
                continue
            ids.append(generation["id"])
            err.print(f"Row {number}: generation {generation['id']} queued", highlight=False)
        err.print(f"{len(ids)} queued, {refused} refused.", highlight=False)
        if (wait or out) and ids:
            _finish(client, _follow(client, ids, timeout), out)
        if refused:
            sys.exit(1)
    except ApiError as exc:
        _fail(exc)


def _row_body(row, folder):
    row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
    options = {k: v for k, v in row.items() if k not in CSV_FIELDS and k and v != ""}
    images = _images([str(folder / row["image"])]) if row.get("image") else {}
    return _body(
        row.get("prompt"),
        row.get("provider") or "hunyuan_rapid",
        row.get("mode"),
        row.get("edition"),
        options,
        images,
    )


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
