"""How exactly `ofa_tf.elastic.from_keras` reproduces each keras.applications network, at full size.

For each model (built offline with `weights=None`, random weights, batch-norm statistics and input
normalization randomized, as tests/test_from_keras.py does at 32 px), side by side in one run: the
converted supernet's largest subnet on 4 images of ofa-tf's normalized input against the Keras model
on the same images in its own input convention, at 224 px and 192 px; its MACs and parameters
against a layer-by-layer count of the Keras model; the conversion's wall time.
Writes benchmarks/results/from_keras_exactness.{json,md} (`--resolutions 32`: a smoke run, written elsewhere).

    python benchmarks/from_keras_exactness.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from results_io import write_results  # noqa: E402
from test_from_keras import MODELS, build, copy_weights, normalized_images, randomize_statistics  # noqa: E402

from ofa_tf.elastic import from_keras  # noqa: E402
from ofa_tf.families.keras.description import model_inputs  # noqa: E402
from ofa_tf.supernet.counting import count_costs, count_model_macs, count_model_params  # noqa: E402


def measure(name: str, resolutions: list[int]) -> list[list]:
    model = build(name, resolutions[0])
    randomize_statistics(model)
    started = time.perf_counter()
    net = from_keras(model, inputs=MODELS[name][1])
    seconds = time.perf_counter() - started
    rows = []
    for resolution in resolutions:
        keras_model = build(name, resolution)
        copy_weights(model, keras_model)
        images = normalized_images(resolution, seed=resolution, count=4)
        expected = keras_model(model_inputs(images, net.space.family_spec.inputs), training=False).numpy()
        got = net(images, training=False).numpy()
        difference = float(np.abs(got - expected).max())
        macs, params = count_costs(net.space, net.space.max_config(), resolution)
        keras_macs, keras_params = count_model_macs(keras_model), count_model_params(keras_model)
        rows.append([
            name, resolution, f"{difference:.2e}", f"{difference / float(np.abs(expected).max()):.2e}",
            f"{macs / 1e6:.2f}", f"{keras_macs / 1e6:.2f}", f"{params / 1e6:.3f}", f"{keras_params / 1e6:.3f}",
            "yes" if (macs, params) == (keras_macs, keras_params) else "NO", f"{seconds:.1f}",
        ])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="224,192", help="comma-separated input sizes (default 224,192)")
    args = parser.parse_args()
    resolutions = [int(r) for r in args.resolutions.split(",")]
    rows = [row for name in MODELS for row in measure(name, resolutions)]
    columns = ("model", "px", "max |logit diff|", "relative to max |logit|", "MMACs (ofa-tf)", "MMACs (Keras count)",
               "M params (ofa-tf)", "M params (Keras)", "equal", "conversion s")
    extra = {"inputs": {name: inputs or "pixels (its preprocessing layers)" for name, (_, inputs) in MODELS.items()},
             "setup": "weights=None, random weights, randomized BN statistics and normalization; 4 images; 1000 classes"}
    path = write_results("from_keras_exactness", "keras.applications made elastic: the largest subnet against the model", columns, rows, extra,
                         published=resolutions == [224, 192])
    print(path.read_text())


if __name__ == "__main__":
    main()
