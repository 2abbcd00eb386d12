#!/usr/bin/env python3
"""OpenCV reference for fer-device's cascade detector (device/src/detect/haar.rs).

Runs cv2.CascadeClassifier.detectMultiScale (opencv-python-headless, pinned in
scripts/requirements-ref.txt) with Debian's haarcascade_frontalface_default.xml (or, with --lbp,
lbpcascade_frontalface_improved.xml) on the fixture photographs (scripts/fixtures.sh) and writes
device/tests/golden/haar.json (lbp.json). The Rust test device/tests/haar_golden.rs compares its
detections with these boxes.

    .venv-ref/bin/python scripts/haar_reference.py [--lbp]           # (re)generate
    .venv-ref/bin/python scripts/haar_reference.py [--lbp] --check   # recompute, exit 1 on drift

`fer-device bench-detect` times OpenCV in the same run through the "bench" mode (one thread, no
OpenCL), which prints one JSON line per image with the median time and the boxes:

    .venv-ref/bin/python scripts/haar_reference.py bench CASCADE SCALE NEIGHBOURS MIN_SIZE RUNS IMAGE...
"""
import json
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
LBP = "--lbp" in sys.argv
CASCADE = (
    "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"
    if LBP
    else "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
)
OUT = ROOT / "device" / "tests" / "golden" / ("lbp.json" if LBP else "haar.json")
CASES = [
    # image, scale_factor, min_neighbors, min_size
    ("astronaut.png", 1.1, 3, 30),
    ("astronaut.png", 1.2, 5, 60),
    ("group.png", 1.1, 3, 24),
]


def gray(path):
    # fer-core's BT.601 luma, rounded, so that both sides see the same gray image.
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"{path}: cannot read (run scripts/fixtures.sh)")
    b, g, r = [img[..., i].astype("float32") for i in range(3)]
    return (0.299 * r + 0.587 * g + 0.114 * b + 0.5).clip(0, 255).astype("uint8")


def bench(args):
    import time

    cascade, sf, mn, ms, runs, images = args[0], float(args[1]), int(args[2]), int(args[3]), int(args[4]), args[5:]
    cv2.setNumThreads(1)
    cv2.ocl.setUseOpenCL(False)
    cc = cv2.CascadeClassifier(cascade)
    if cc.empty():
        sys.exit(f"{cascade}: cannot load")
    for path in images:
        g = gray(path)
        times = []
        for _ in range(max(runs, 1)):
            t0 = time.perf_counter()
            faces = cc.detectMultiScale(g, scaleFactor=sf, minNeighbors=mn, minSize=(ms, ms))
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        boxes = sorted([int(v) for v in f] for f in faces)
        print(json.dumps({"image": path, "median_ms": times[len(times) // 2], "boxes": boxes}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "bench":
        return bench(sys.argv[2:])
    cc = cv2.CascadeClassifier(CASCADE)
    if cc.empty():
        sys.exit(f"{CASCADE}: cannot load (install Debian's opencv-data)")
    cases = []
    for image, sf, mn, ms in CASES:
        faces = cc.detectMultiScale(gray(ROOT / ".cache" / "fixtures" / image), scaleFactor=sf, minNeighbors=mn, minSize=(ms, ms))
        boxes = sorted([int(v) for v in f] for f in faces)
        cases.append({"image": image, "scale_factor": sf, "min_neighbors": mn, "min_size": ms, "boxes": boxes})
    doc = {"generated_by": "scripts/haar_reference.py", "opencv": cv2.__version__, "cascade": CASCADE, "cases": cases}
    if "--check" in sys.argv:
        old = json.loads(OUT.read_text())
        if old["cases"] != cases:
            sys.exit(f"{OUT}: OpenCV now gives other boxes; regenerate and review")
        print(f"{OUT.name} goldens match OpenCV {cv2.__version__} ({len(cases)} cases)")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}: " + ", ".join(f"{c['image']}: {len(c['boxes'])} faces" for c in cases))


if __name__ == "__main__":
    main()
