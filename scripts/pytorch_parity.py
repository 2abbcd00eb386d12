#!/usr/bin/env python3
"""PyTorch/torchvision reference for fer-trainer's models (host-trainer/tests/integration/pytorch_parity.rs).

The Rust test writes, into DIR:
  case.json             architecture and optimizer settings
  weights.safetensors   the Rust model's initial parameters and BatchNorm buffers
  io.safetensors        input x, labels y, the Rust eval-mode logits
  after.safetensors     the Rust parameters and buffers after one training step
This script builds the same network with torchvision, loads the weights, checks the eval-mode
logits and the result of one optimizer step, and exits 1 on any difference above tolerance.

    .venv-torch-ref/bin/python scripts/pytorch_parity.py DIR
"""
import json
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import load_file

TOL_LOGITS = 1e-4
TOL_STEP = 1e-4


def build(case):
    arch = case["architecture"]
    if arch["name"] == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(width_mult=arch["width"], num_classes=arch["classes"], dropout=arch["dropout"])
        old = m.features[0][0]
        m.features[0][0] = torch.nn.Conv2d(arch["in_channels"], old.out_channels, 3, arch["stem_stride"], 1, bias=False)
        return m
    if arch["name"] == "resnet":
        m = getattr(torchvision.models, f"resnet{arch['depth']}")(num_classes=arch["classes"])
        m.conv1 = torch.nn.Conv2d(arch["in_channels"], 64, 7, 2, 3, bias=False)
        return m
    if arch["name"] == "efficient_net":
        from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
        setting, last = _efficientnet_conf("efficientnet_b0", width_mult=arch["width"], depth_mult=arch["depth"])
        m = EfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, num_classes=arch["classes"], last_channel=last)
        old = m.features[0][0]
        m.features[0][0] = torch.nn.Conv2d(arch["in_channels"], old.out_channels, 3, 2, 1, bias=False)
        return m
    if arch["name"] == "vgg16_bn":
        m = torchvision.models.vgg16_bn(num_classes=arch["classes"], dropout=0.0)
        m.features[0] = torch.nn.Conv2d(arch["in_channels"], 64, 3, padding=1)
        p, h = arch["pool"], arch["hidden"]
        m.avgpool = torch.nn.AdaptiveAvgPool2d((p, p))
        m.classifier[0] = torch.nn.Linear(512 * p * p, h)
        m.classifier[3] = torch.nn.Linear(h, h)
        m.classifier[6] = torch.nn.Linear(h, arch["classes"])
        return m
    sys.exit(f"unknown architecture {arch['name']}")


def optimizer(case, params):
    o = case["optimizer"]
    if o["kind"] == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"])
    if o["kind"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"], nesterov=True)
    sys.exit(f"unknown optimizer {o['kind']}")


def compare(what, ours, theirs, tol):
    worst, name, n = 0.0, None, 0
    for k, v in theirs.items():
        if k.endswith("num_batches_tracked"):
            continue
        if k not in ours:
            sys.exit(f"{what}: Rust lacks {k}")
        d = (ours[k].double() - v.double()).abs().max().item()
        n += 1
        if d > worst or name is None:
            worst, name = d, k
    if n == 0:
        sys.exit(f"{what}: nothing compared")
    print(f"{what}: {n} tensors, max abs diff {worst:.3g} (worst: {name})")
    if worst > tol:
        sys.exit(f"{what}: {name} differs by {worst:.3g} > {tol}")


def main():
    d = Path(sys.argv[1])
    case = json.loads((d / "case.json").read_text())
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    m = build(case)
    weights = load_file(str(d / "weights.safetensors"))
    missing, unexpected = m.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
    io = load_file(str(d / "io.safetensors"))
    m.eval()
    with torch.no_grad():
        logits = m(io["x"])
    compare("eval logits", {"logits": io["logits_eval"]}, {"logits": logits}, TOL_LOGITS)

    m.train()
    opt = optimizer(case, m.parameters())
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(m(io["x"]), io["y"])
    loss.backward()
    opt.step()
    after = load_file(str(d / "after.safetensors"))
    compare("one optimizer step", after, m.state_dict(), TOL_STEP)
    print("parity ok")


if __name__ == "__main__":
    main()
