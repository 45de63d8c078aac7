"""Copy the front-end files installed by npm into static/vendor.

model-viewer's default decoder locations point at public CDNs; base.html points
them at these copies instead, so the dashboard works on a closed network.
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules"
VENDOR = ROOT / "static" / "vendor"

COPIES = [
    ("@google/model-viewer/dist/model-viewer.min.js", "model-viewer/model-viewer.min.js"),
    # The bundle names its source map; collectstatic's manifest storage insists it exists.
    ("@google/model-viewer/dist/model-viewer.min.js.map", "model-viewer/model-viewer.min.js.map"),
    ("three/examples/jsm/libs/draco/gltf/draco_decoder.js", "draco/draco_decoder.js"),
    ("three/examples/jsm/libs/draco/gltf/draco_decoder.wasm", "draco/draco_decoder.wasm"),
    ("three/examples/jsm/libs/draco/gltf/draco_wasm_wrapper.js", "draco/draco_wasm_wrapper.js"),
    ("three/examples/jsm/libs/basis/basis_transcoder.js", "basis/basis_transcoder.js"),
    ("three/examples/jsm/libs/basis/basis_transcoder.wasm", "basis/basis_transcoder.wasm"),
    # model-viewer loads the meshopt decoder with a classic <script> tag (then decodes with
    # the copy it bundles): three's ES-module build fails to parse there.
    ("meshoptimizer/meshopt_decoder.cjs", "meshopt/meshopt_decoder.js"),
]


def main():
    missing = [src for src, _ in COPIES if not (NODE / src).exists()]
    if missing:
        sys.exit(f"vendor_static: run `npm ci` first; missing {', '.join(missing)}")
    for src, dest in COPIES:
        target = VENDOR / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NODE / src, target)
    print(f"vendor_static: copied {len(COPIES)} files into {VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
