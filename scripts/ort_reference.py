"""Runs ONNX models in onnxruntime (CPU), the independent runtime that fer-edge's exported and
quantized models are checked against (tests) and timed against (benchmarks).

usage:
  ort_reference.py run MODEL.onnx IN.f32 N C H W OUT.f32      # logits of N NCHW inputs, float32 LE
  ort_reference.py bench MODEL.onnx C H W RUNS                 # median batch-1 latency, 1 thread, ms

Installed in .venv-ref by scripts/setup.sh (scripts/requirements-ref.txt).
"""
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "run":
        model, inp, n, c, h, w, out = sys.argv[2:9]
        x = np.fromfile(inp, dtype="<f4").reshape(int(n), int(c), int(h), int(w))
        s = session(model)
        y = s.run(None, {s.get_inputs()[0].name: x})[0]
        np.ascontiguousarray(y, dtype="<f4").tofile(out)
        print(f"onnxruntime {ort.__version__}: {model}: {y.shape}")
    elif cmd == "bench":
        model, c, h, w, runs = sys.argv[2:7]
        s = session(model)
        name = s.get_inputs()[0].name
        x = np.full((1, int(c), int(h), int(w)), 0.1, dtype=np.float32)
        for _ in range(5):
            s.run(None, {name: x})
        t = []
        for _ in range(int(runs)):
            t0 = time.perf_counter()
            s.run(None, {name: x})
            t.append((time.perf_counter() - t0) * 1e3)
        t.sort()
        print(f"{t[len(t) // 2]:.6f}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
