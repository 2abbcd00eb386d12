"""Raw YUYV camera frames of moving faces, for measuring the pipeline's region passes.

    .venv-ref/bin/python scripts/moving_frames.py [--group|--empty|--person] [--noise SIGMA] STEP FRAMES OUT.yuv [WIDTHxHEIGHT]

The astronaut photograph (scripts/fixtures.sh), resized to 480x480 (Pillow, bilinear), on a gray
640x480 canvas, moving right and back between x = 0 and 160 by STEP pixels a frame. With
--group, several faces: a 320x240 window of the group photograph, from (200 + x / 2, 170),
upscaled to 640x480 (Pillow, bilinear; faces ~115-160 px), x going right and back between 0
and 640 by STEP pixels a frame (the camera panning). YUYV with BT.601 limited-range
coefficients and chroma averaged over each pixel pair (NumPy, independent of fer-device's
decoder). With WIDTHxHEIGHT, each 640x480 canvas is resized to it (Pillow, bilinear) before
encoding. With --empty, a scene without a face: the astronaut photograph's lower half (the suit and
the flag) at 2.5x, 640x480 of it from (x, 0), moving as --group's. With --person, a fixed camera: --empty's
scene at x = 0, still, and a 240x280 part of the 480x480 astronaut around her head (from (100, 0)) in front
of it at (x, 100), x going right and back between 0 and 400. With --noise, Gaussian noise of SIGMA
levels (NumPy, seed 0) is added to every pixel of every frame, as a camera's sensor does.
Replay with `fer-device run|bench --source yuyv:640x480:OUT.yuv`. Prints the canvas x
of each frame.
"""
import sys

import numpy as np
from PIL import Image


def yuyv(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    u = (u[:, 0::2] + u[:, 1::2]) / 2
    v = (v[:, 0::2] + v[:, 1::2]) / 2
    out = np.empty((rgb.shape[0], rgb.shape[1] * 2), np.uint8)
    q = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)
    out[:, 0::4], out[:, 1::4], out[:, 2::4], out[:, 3::4] = q(y[:, 0::2]), q(u), q(y[:, 1::2]), q(v)
    return out.tobytes()


def main(args):
    group = empty = person = False
    sigma = 0.0
    while args and args[0].startswith("--"):
        if args[0] == "--noise":
            sigma, args = float(args[1]), args[2:]
            continue
        group, empty = group or args[0] == "--group", empty or args[0] == "--empty"
        person = person or args[0] == "--person"
        if args[0] not in ("--group", "--empty", "--person"):
            sys.exit(f"moving_frames.py: unknown option {args[0]}")
        args = args[1:]
    rng = np.random.default_rng(0)
    step, n, path = int(args[0]), int(args[1]), args[2]
    size = tuple(int(v) for v in args[3].split("x")) if len(args) > 3 else (640, 480)
    if person:
        half = Image.open(".cache/fixtures/astronaut.png").convert("RGB").crop((0, 256, 512, 512))
        room = np.asarray(half.resize((1280, 640), Image.BILINEAR)).astype(np.float64)[:480, :640]
        src = Image.open(".cache/fixtures/astronaut.png").convert("RGB").resize((480, 480), Image.BILINEAR)
        head = np.asarray(src).astype(np.float64)[0:280, 100:340]
        end = 400

        def canvas_at(x):
            canvas = room.copy()
            canvas[100:380, x : x + 240] = head
            return canvas
    elif empty:
        half = Image.open(".cache/fixtures/astronaut.png").convert("RGB").crop((0, 256, 512, 512))
        wide = np.asarray(half.resize((1280, 640), Image.BILINEAR)).astype(np.float64)
        end = 640

        def canvas_at(x):
            return wide[:480, x : x + 640]
    elif group:
        photo = Image.open(".cache/fixtures/group.png").convert("RGB")
        end = 640

        def canvas_at(x):
            window = photo.crop((200 + x // 2, 170, 200 + x // 2 + 320, 410))
            return np.asarray(window.resize((640, 480), Image.BILINEAR)).astype(np.float64)
    else:
        src = Image.open(".cache/fixtures/astronaut.png").convert("RGB").resize((480, 480), Image.BILINEAR)
        face = np.asarray(src).astype(np.float64)
        end = 160

        def canvas_at(x):
            canvas = np.full((480, 640, 3), 128.0)
            canvas[:, x : x + 480] = face
            return canvas

    xs, x, d = [], 0, step
    for _ in range(n):
        xs.append(x)
        if not 0 <= x + d <= end:
            d = -d
        x += d
    with open(path, "wb") as f:
        for x in xs:
            canvas = canvas_at(x)
            if sigma > 0:
                canvas = np.clip(canvas + rng.normal(0.0, sigma, canvas.shape), 0, 255)
            if size != (640, 480):
                img = Image.fromarray(canvas.astype(np.uint8)).resize(size, Image.BILINEAR)
                canvas = np.asarray(img).astype(np.float64)
            f.write(yuyv(canvas))
    print(xs)


if __name__ == "__main__":
    main(sys.argv[1:])
