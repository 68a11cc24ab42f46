#!/usr/bin/env python3
"""Write suites/tflite-inference/model.tflite and model-weights.json.

The model is the network of the article's example 1,
Sequential([Dense(10, relu, input_shape=(100,)), Dense(1)]), with fixed
weights drawn from a seeded NumPy generator rather than Keras' initialisers,
so the weights do not depend on the TF version. The weights go beside the
model as JSON, so a test can run the same network as a NumPy forward pass.

Run it with the interpreter that scripts/tf-venv.sh prints. Running it twice
gives the same bytes; --check compares instead of writing.
"""
import argparse
import json
import os
import sys

SEED = 20250130  # the article's date
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "suites", "tflite-inference")


def make_weights():
    import numpy as np

    rng = np.random.RandomState(SEED)
    # Glorot-like scale keeps the outputs O(1), so a 1e-5 tolerance is meaningful.
    return {
        "w1": (rng.standard_normal((100, 10)) * 0.14).astype(np.float32),
        "b1": (rng.standard_normal(10) * 0.1).astype(np.float32),
        "w2": (rng.standard_normal((10, 1)) * 0.4).astype(np.float32),
        "b2": (rng.standard_normal(1) * 0.1).astype(np.float32),
    }


def convert(weights):
    import tensorflow as tf

    # The article's layers; the input is declared with a batch of 1 so every
    # shape in the file is static (Arm NN's parser needs that).
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(100,), batch_size=1, name="x"),
        tf.keras.layers.Dense(10, activation="relu"),
        tf.keras.layers.Dense(1),
    ])
    model.layers[0].set_weights([weights["w1"], weights["b1"]])
    model.layers[1].set_weights([weights["w2"], weights["b2"]])
    # from_keras_model freezes the variables into constants: two FULLY_CONNECTED ops.
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def weights_json(weights):
    # float32 values are exact in float64, so JSON round-trips them bit for bit.
    doc = {
        "seed": SEED,
        "layers": "y = relu(x @ w1 + b1) @ w2 + b2",
        "input_shape": [1, 100],
        "output_shape": [1, 1],
    }
    for key in ("w1", "b1", "w2", "b2"):
        doc[key] = weights[key].astype(float).tolist()
    return (json.dumps(doc, indent=1) + "\n").encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = parser.parse_args()

    weights = make_weights()
    outputs = {"model.tflite": convert(weights), "model-weights.json": weights_json(weights)}

    stale = []
    for name, data in outputs.items():
        path = os.path.join(args.out_dir, name)
        if args.check:
            with open(path, "rb") as f:
                if f.read() != data:
                    stale.append(name)
        else:
            with open(path, "wb") as f:
                f.write(data)
            print("wrote %s (%d bytes)" % (os.path.relpath(path), len(data)))
    if stale:
        print("differs from a fresh conversion: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
