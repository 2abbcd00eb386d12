#!/usr/bin/env python3
"""Independent reference for fer-core's preprocessing (core/src/preprocess.rs), in Pillow + NumPy.

Writes core/tests/golden/preprocess/cases.json: for each case the input image, face box, input spec
and the expected NCHW tensor. The Rust test core/tests/preprocess_golden.rs compares against it.

    .venv-ref/bin/python scripts/preprocess_reference.py           # (re)generate the goldens
    .venv-ref/bin/python scripts/preprocess_reference.py --check   # recompute, compare, exit 1 on drift

The input PNGs are generated once (deterministic NumPy PCG64 noise over gradients) and then reused.
Steps, written independently of the Rust code:
  crop   box grown by margin*w / margin*h per side (float32), floor/ceil outwards, clamped
  gray   float32 0.299 R + 0.587 G + 0.114 B (BT.601, not rounded to 8 bits)
  resize Pillow Image.resize on mode "F" images (BILINEAR or NEAREST)
  norm   (v * scale - mean[c]) / std[c] in float32
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "core" / "tests" / "golden" / "preprocess"

MINI_XCEPTION = {"scale": 1 / 255, "mean": [0.5], "std": [0.5]}
IMAGENET = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
FACE_API = {"scale": 1.0, "mean": [122.782, 117.001, 104.298], "std": [255.0]}
UNIT = {"scale": 1 / 255, "mean": [0.0], "std": [1.0]}

CASES = [
    # name, image, box (x, y, w, h) or None, margin, color, width, height, resize, normalisation
    ("rgb_to_gray48_bilinear_minixception", "input_rgb.png", (20.3, 11.7, 50.0, 55.0), 0.15, "gray", 48, 48, "bilinear", MINI_XCEPTION),
    ("rgb_edge_box_clamped_rgb32_imagenet", "input_rgb.png", (70.0, -5.0, 40.0, 40.0), 0.1, "rgb", 32, 32, "bilinear", IMAGENET),
    ("gray_whole_image_upscale64", "input_gray.png", None, 0.0, "gray", 64, 64, "bilinear", UNIT),
    ("gray_box_nearest24_faceapi_rgb", "input_gray.png", (5.0, 4.0, 30.0, 28.0), 0.05, "rgb", 24, 24, "nearest", FACE_API),
    ("rgb_to_gray_nearest_nomargin", "input_rgb.png", (10.0, 10.0, 61.0, 61.0), 0.0, "gray", 40, 40, "nearest", MINI_XCEPTION),
    ("rgb_mixed_scale_48x40", "input_rgb.png", (30.0, 20.0, 30.0, 60.0), 0.2, "gray", 48, 40, "bilinear", UNIT),
]


def make_inputs():
    rng = np.random.Generator(np.random.PCG64(20261122))
    h, w = 83, 97
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (w + h) * 255], axis=-1)
    rgb = np.clip(base * 0.6 + rng.integers(0, 100, size=(h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(OUT / "input_rgb.png")
    gh, gw = 36, 40
    gyy, gxx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    gray = np.clip(128 + 100 * np.sin(gxx / 5) * np.cos(gyy / 7) + rng.integers(-20, 20, size=(gh, gw)), 0, 255)
    Image.fromarray(gray.astype(np.uint8)).save(OUT / "input_gray.png")


def crop(size, box, margin):
    width, height = size
    if box is None:
        return 0, 0, width, height
    x, y, w, h = (np.float32(v) for v in box)
    m = np.float32(margin)
    mx, my = m * w, m * h
    x0 = max(0.0, math.floor(x - mx))
    y0 = max(0.0, math.floor(y - my))
    x1 = min(float(width), math.ceil(x + w + mx))
    y1 = min(float(height), math.ceil(y + h + my))
    return int(x0), int(y0), int(x1), int(y1)


def planes(img, rect, color):
    arr = np.asarray(img.crop(rect))
    if img.mode == "L":
        p = arr.astype(np.float32)
        return [p] * (1 if color == "gray" else 3)
    arr = arr.astype(np.float32)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    if color == "gray":
        return [np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b]
    return [r, g, b]


def run_case(name, image, box, margin, color, width, height, resize, norm):
    img = Image.open(OUT / image)
    img.load()
    rect = crop(img.size, box, margin)
    filt = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}[resize]
    out = []
    for c, p in enumerate(planes(img, rect, color)):
        r = np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32)).resize((width, height), filt), dtype=np.float32)
        mean = np.float32(norm["mean"][0 if len(norm["mean"]) == 1 else c])
        std = np.float32(norm["std"][0 if len(norm["std"]) == 1 else c])
        out.append((r * np.float32(norm["scale"]) - mean) / std)
    tensor = np.stack(out)[None]
    channels = 1 if color == "gray" else 3
    return {
        "name": name,
        "image": image,
        "box": None if box is None else dict(zip("xywh", box)),
        "crop": list(rect),
        "spec": {
            "channels": channels, "height": height, "width": width, "color": color, "resize": resize,
            "normalisation": {"scale": norm["scale"], "mean": norm["mean"][:channels] if len(norm["mean"]) > 1 else norm["mean"], "std": norm["std"]},
            "face_margin": margin,
        },
        "shape": list(tensor.shape),
        "expected": [float(v) for v in tensor.ravel()],
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    if not (OUT / "input_rgb.png").exists():
        make_inputs()
    cases = [run_case(*c) for c in CASES]
    doc = {
        "generated_by": "scripts/preprocess_reference.py",
        "pillow": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
        "numpy": np.__version__,
        "cases": cases,
    }
    path = OUT / "cases.json"
    if "--check" in sys.argv:
        old = json.loads(path.read_text())
        worst = 0.0
        for a, b in zip(old["cases"], cases):
            if a["shape"] != b["shape"] or a["crop"] != b["crop"]:
                sys.exit(f"{path}: case {a['name']}: shape/crop changed")
            worst = max(worst, float(np.max(np.abs(np.array(a["expected"]) - np.array(b["expected"])))))
        if len(old["cases"]) != len(cases) or worst > 1e-6:
            sys.exit(f"{path}: goldens drifted from the Pillow reference (max abs diff {worst:g}); regenerate and review")
        print(f"preprocess goldens match the Pillow {doc['pillow']} reference ({len(cases)} cases, max abs diff {worst:g})")
        return
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
