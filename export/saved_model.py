"""`ofa-tf export --saved-model`: a subnet as a TensorFlow SavedModel, validated against Keras.

For TF Serving, TensorFlow.js or another converter. The SavedModel is written
to a temporary folder beside the target, reloaded, run on validation images
and compared with the Keras model; only a model within 1e-4 (relative to
max(1, |logit|)) is moved into place.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ofa_tf.errors import ConfigError

TOLERANCE = 1e-4


def export_saved_model(model_path: str, out: str, data: str = "bundled", resolution: int | None = None,
                       validate_images: int = 64) -> float:
    """Writes the model at `model_path` as a SavedModel folder `out`; returns the max |logit diff| found.

    Raises:
        ConfigError: `out` exists, or the reloaded SavedModel disagrees with Keras.
    """
    from ofa_tf._backend import tf
    from ofa_tf.data.sources import open_source, require_classes
    from ofa_tf.export.pipeline import export_resolution, load_model
    from ofa_tf.export.quantize import validation_images
    from ofa_tf.export.validate import keras_logits

    target = Path(out)
    if target.exists():
        raise ConfigError(f"--out {out} exists: choose a new folder for the SavedModel")
    model = load_model(model_path)
    size = export_resolution(model, resolution)
    source = require_classes(open_source(data), int(model.output_shape[-1]), f"the model {model_path}",
        f"ofa-tf finetune {model_path} --data {data or 'DATA'} --out DIR",
    )
    images, _ = validation_images(source, size, validate_images)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.export(str(staging / "model"), format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(str(staging / "model"))  # keep it: `serve` needs its variables
        exported = np.concatenate([loaded.serve(tf.constant(images[i : i + 32])).numpy() for i in range(0, len(images), 32)])
        expected = keras_logits(model, images)
        difference = float(np.abs(exported - expected).max())
        if difference > TOLERANCE * max(1.0, float(np.abs(expected).max())):
            raise ConfigError(f"the SavedModel's logits differ from the Keras model's by {difference:.3g}: not written")
        (staging / "model").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return difference
