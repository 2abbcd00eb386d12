"""Reference outputs of a Keras HDF5 model, run by Keras itself (Keras 3, torch backend, from
.venv-torch-ref; see scripts/torch-ref.sh), for fer-trainer's import parity tests.

usage: keras_reference.py MODEL.hdf5 IN.safetensors OUT.safetensors

IN holds `x` as NCHW float32 (fer-edge's layout); it is fed to Keras as NHWC. OUT gets `probs`
(the model's own output, softmax) and `logits` (the input of the final softmax Activation layer).
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402


def main() -> None:
    model_path, in_path, out_path = sys.argv[1:4]
    model = keras.models.load_model(model_path, compile=False)
    last = model.layers[-1]
    if not (last.__class__.__name__ == "Activation" and last.get_config()["activation"] == "softmax"):
        sys.exit(f"{model_path}: last layer is {last.name}, not a softmax Activation")
    x = load_file(in_path)["x"].transpose(0, 2, 3, 1).copy()
    logits_model = keras.Model(model.inputs, last.input)
    probs = keras.ops.convert_to_numpy(model(x, training=False))
    logits = keras.ops.convert_to_numpy(logits_model(x, training=False))
    save_file({"probs": np.ascontiguousarray(probs, dtype=np.float32),
               "logits": np.ascontiguousarray(logits, dtype=np.float32)}, out_path)
    print(f"keras {keras.__version__} ({keras.backend.backend()}): {x.shape[0]} inputs -> {out_path}")


if __name__ == "__main__":
    main()
