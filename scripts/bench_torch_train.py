"""PyTorch side of `fer-train bench-train`: trains torchvision's MobileNetV2 (width W, 1-channel
stem of stride S, 7 classes) on random 48x48 gray batches with AdamW and prints the training
throughput in images per second, measured exactly as the Rust side measures it.

usage: bench_torch_train.py WIDTH STEM_STRIDE BATCH STEPS WARMUP THREADS SIZE [cpu|cuda]
Run with .venv-torch-ref/bin/python (scripts/torch-ref.sh): torch 2.13.0 CPU, same libtorch as tch.
"""
import sys
import time

import torch
import torchvision


def main() -> None:
    width, stride, batch, steps, warmup, threads, size = sys.argv[1:8]
    device = torch.device(sys.argv[8] if len(sys.argv) > 8 else "cpu")
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    m = torchvision.models.mobilenet_v2(width_mult=float(width), num_classes=7, dropout=0.2)
    old = m.features[0][0]
    m.features[0][0] = torch.nn.Conv2d(1, old.out_channels, 3, int(stride), 1, bias=False)
    m = m.to(device)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-4)
    b, s = int(batch), int(size)
    x = torch.randn(b, 1, s, s, device=device)
    y = torch.randint(0, 7, (b,), device=device)
    t0 = None
    for i in range(int(warmup) + int(steps)):
        if i == int(warmup):
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    elapsed = time.perf_counter() - t0
    print(f"{int(steps) * b / elapsed:.2f}")


if __name__ == "__main__":
    main()
