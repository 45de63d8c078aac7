"""Time and memory of one poster (generations/posters.py) on small and large GLBs.

Each poster is drawn in a fresh child process, so nothing else shares its memory;
growth is the peak resident set while drawing minus the resident set right before
(bench_memory.Growth). The models: a sandbox chair (20k faces, textured), the
sandbox's largest model (200k faces), and bench_memory's real 200 MB GLB (a 3.7M-vertex
grid, 7.3M faces, with normals, UVs and a 1024 px PNG texture); then Draco-compressed
ones, decoded whole per primitive: the 200k chair and a 374k-vertex grid with normals and
UVs (just under posters.DRACO_MAX_POINTS, the most decoded at once). The target is the
pipeline's: at most 64 MB growth, and well inside the poster's time box.

    .venv/bin/python tests/bench/bench_posters.py
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def child(path):
    from generations import posters
    from tests.bench.bench_memory import Growth

    started = time.monotonic()
    with Growth() as growth:
        png = posters.render_png(path)
    Path(path).with_suffix(".png").write_bytes(png)
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 2),
            "png_bytes": len(png), "hwm_reset": growth.reset}  # fmt: skip


def run_child(path):
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"child failed on {path}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    from sandbox import meshes
    from tests.bench.bench_memory import write_real_glb

    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for name, faces in (("chair-20k", None), ("chair-200k", 200_000)):
            path = Path(tmp) / f"{name}.glb"
            scene = meshes.model_from_prompt("a red chair", 1, face_target=faces)
            path.write_bytes(meshes.glb_bytes(scene))
            models[name] = path
        models["grid-200MB"] = write_real_glb(Path(tmp) / "grid-200MB.glb")
        # Draco-compressed (the optimize step's output): each primitive is decoded whole.
        from sandbox import draco

        for name, source, size_mb in (("chair-200k", models["chair-200k"], None),
                                      ("grid-0.37M", None, 20)):  # fmt: skip
            if source is None:
                source = write_real_glb(Path(tmp) / f"{name}.glb", size_mb=size_mb)
            path = Path(tmp) / f"{name}-draco.glb"
            path.write_bytes(draco.compress(source.read_bytes()))
            models[f"{name}-draco"] = path
        for name, path in models.items():
            result = run_child(path)
            size = path.stat().st_size / 1024 / 1024
            print(f"{name:<16} {size:6.1f} MB GLB: {result['seconds']:5.2f} s, "
                  f"+{result['growth_mb']:5.1f} MB resident, PNG {result['png_bytes']:,} bytes"
                  f"{'' if result['hwm_reset'] else ' (peak not reset: an overestimate)'}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main()
