"""Fits the accuracy predictor on measured subnets and scores it on held-out ones.

The reference ships no trainer; this one follows its data handling (targets
= top-1 / 100, output bias = mean target, 80/20 split) and regresses with MSE
(Adam). The split is by subnet, not by record, so a subnet measured at several
resolutions never sits on both sides. A tenth of the training subnets picks
the epoch (early stopping); the held-out fifth is only used for the report.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ofa_tf._backend import keras
from ofa_tf.errors import ConfigError
from ofa_tf.nas.accuracy_predictor import AccuracyPredictor, build_accuracy_mlp
from ofa_tf.nas.arch_encoding import arch_encoder
from ofa_tf.space.choices import ArchRows
from ofa_tf.space.registry import Space

MIN_SUBNETS = 10


@dataclasses.dataclass(frozen=True)
class PredictorTrainingConfig:
    """How the predictor is fitted.

    Args:
        hidden_size / n_layers: the MLP (reference 400 x 3).
        epochs: upper bound on epochs (early stopping picks the best).
        batch_size: records per step (reference 256).
        learning_rate: Adam learning rate.
        test_fraction: subnets held out for the reported RMSE and Kendall's tau (reference 0.2).
        patience: epochs without improvement before stopping.
        seed: seeds the split and the initialization.
    """

    hidden_size: int = 400
    n_layers: int = 3
    epochs: int = 500
    batch_size: int = 256
    learning_rate: float = 1e-3
    test_fraction: float = 0.2
    patience: int = 50
    seed: int = 0


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b rank correlation of two [N] arrays."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    upper = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    denominator = np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float(np.sum(dx * dy) / denominator) if denominator else 0.0


def _arch_and_targets(space: Space, records: Sequence[dict[str, Any]]) -> tuple[ArchRows, np.ndarray]:
    configs = [space.config_from_dict({**r["config"], "r": r["resolution"]}) for r in records]
    return space.to_indices(configs), np.array([r["top1"] / 100.0 for r in records], np.float32)


def _split_by_subnet(records: Sequence[dict[str, Any]], fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    subnets = np.unique([r["subnet"] for r in records])
    n_held = max(1, int(round(fraction * len(subnets))))
    held = set(rng.permutation(subnets)[:n_held].tolist())
    return [r for r in records if r["subnet"] not in held], [r for r in records if r["subnet"] in held]


def fit_accuracy_predictor(
    space: Space,
    records: Sequence[dict[str, Any]],
    resolutions: Sequence[int],
    config: PredictorTrainingConfig = PredictorTrainingConfig(),
) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """Trains the MLP on `records` (from `build_accuracy_dataset`).

    Returns:
        the predictor and its metrics on the held-out subnets: RMSE (top-1
        points), Kendall's tau, and the same for the mean-accuracy baseline.
    """
    n_subnets = len({r["subnet"] for r in records})
    if n_subnets < MIN_SUBNETS:
        raise ConfigError(
            f"{n_subnets} measured subnets are too few to train and test a predictor: build at least {MIN_SUBNETS}"
        )
    rng = np.random.default_rng(config.seed)
    encoder = arch_encoder(space, resolutions)
    train_records, test_records = _split_by_subnet(records, config.test_fraction, rng)
    fit_records, stop_records = _split_by_subnet(train_records, 0.1, rng)
    arch_fit, y_fit = _arch_and_targets(space, fit_records)
    arch_stop, y_stop = _arch_and_targets(space, stop_records)
    keras.utils.set_random_seed(config.seed)
    model = build_accuracy_mlp(encoder.n_features, config.hidden_size, config.n_layers)
    # Start from the reference's base_acc (mean accuracy) exactly: a zero output kernel, so the
    # random hidden layers add nothing until trained (a random start is off by tens of points).
    model.layers[-1].kernel.assign(np.zeros(model.layers[-1].kernel.shape, np.float32))
    model.layers[-1].bias.assign([float(np.mean(y_fit))])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    model.fit(
        encoder.encode(arch_fit), y_fit, batch_size=config.batch_size, epochs=config.epochs,
        validation_data=(encoder.encode(arch_stop), y_stop),
        callbacks=[stop], shuffle=True, verbose=0,
    )
    predictor = AccuracyPredictor(encoder, model)
    arch_test, y_test = _arch_and_targets(space, test_records)
    predicted = predictor.predict(arch_test)
    baseline = np.full_like(y_test, np.mean(y_fit))
    metrics = {
        "n_train_records": len(train_records),
        "n_test_records": len(test_records),
        "rmse_top1": float(100.0 * np.sqrt(np.mean((predicted - y_test) ** 2))),
        "kendall_tau": kendall_tau(predicted, y_test),
        "baseline_rmse_top1": float(100.0 * np.sqrt(np.mean((baseline - y_test) ** 2))),
        "test_top1_range": [float(100.0 * y_test.min()), float(100.0 * y_test.max())],
        "epochs_run": int(stop.stopped_epoch or config.epochs),
        "config": dataclasses.asdict(config),
    }
    return predictor, metrics
