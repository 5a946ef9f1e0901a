"""Progressive shrinking with knowledge distillation: the custom training loop.

Per step: N subnets are sampled (from the phase's lists, seeded by the seed
and the global step, so every replica and every rerun agrees), each is run
on the same batch, their gradients are summed, then one SGD step is taken.
Loss per subnet = label-smoothed CE + kd_ratio x soft-target CE against the
teacher's softmax. The subnet reaches the graph as int32 tensors, so one
traced gradient function serves every subnet, phase and resolution.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.data.source_base import fitting_holdout
from ofa_tf.data.sources import ImageSource, open_source
from ofa_tf.errors import ConfigError, DataError, DivergedError, MissingFileError
from ofa_tf.io import atomic_write_json, read_json
from ofa_tf.supernet.storage import CARD_FILE, load_supernet, save_supernet
from ofa_tf.supernet.storage import Supernet, supernet_for_space
from ofa_tf.space.registry import Config
from ofa_tf.training.config import PhaseConfig, TrainConfig
from ofa_tf.training.evaluation import SubnetEvaluator, preserved_bn_statistics
from ofa_tf.training.graph_options import graph_rewrites_off
from ofa_tf.training.input import training_batches
from ofa_tf.training.optimizer import MomentumSGD
from ofa_tf.training.run_log import RunLog
from ofa_tf.training.losses import label_smoothed_cross_entropy, soft_target_cross_entropy
from ofa_tf.training.schedule import learning_rate, scaled_lr
from ofa_tf.training.transfer import pretrained_space, transfer_weights

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
TEACHER_DIR = "teacher"
SUPERNET_DIR = "supernet"
RESULTS_FILE = "phase_results.json"


class Reporter(Protocol):
    """What the trainer tells its caller (the CLI prints it; the library never does)."""

    def phase_start(self, phase: PhaseConfig, index: int, total_steps: int, start_step: int) -> None: ...

    def step(self, metrics: dict[str, float]) -> None: ...

    def phase_end(self, phase: PhaseConfig, evaluation: list[dict[str, Any]]) -> None: ...


class SilentReporter:
    def phase_start(self, phase, index, total_steps, start_step):
        pass

    def step(self, metrics):
        pass

    def phase_end(self, phase, evaluation):
        pass


def phase_steps(phase: PhaseConfig, n_train: int, batch_size: int, max_steps: int | None) -> tuple[int, int]:
    """(warm-up steps, total steps) of a phase."""
    steps_per_epoch = max(1, n_train // batch_size)
    warmup = int(round(phase.warmup_epochs * steps_per_epoch))
    total = warmup + max(1, int(round(phase.epochs * steps_per_epoch)))
    if max_steps is not None and total > max_steps:
        warmup = min(warmup, max_steps // 2)
        total = max_steps
    return warmup, total


def _decayed(variable) -> bool:
    """Weight decay applies to everything but BN parameters and biases (reference `no_decay_keys`)."""
    path = variable.path
    return "_bn/" not in path and "bias" not in path


class ProgressiveShrinkingTrainer:
    """Trains an OFA supernet phase by phase into `run_dir`; resumes from its checkpoints.

    Args:
        config: the resolved training configuration.
        run_dir: output folder (config, checkpoints, teacher, supernet, metrics).
        strategy: a `tf.distribute` strategy (default: the current one).
        reporter: receives progress and evaluation tables.
        source: the images (default: opened from `config.data`).
        cap_holdout: hold out at most a fifth of the training images for the predictor (a preset's
            `holdout_images` is sized for its dataset); False keeps `config.holdout_images` as given
            (set by the user, or saved by the run being resumed).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        strategy: tf.distribute.Strategy | None = None,
        reporter: Reporter | None = None,
        source: ImageSource | None = None,
        cap_holdout: bool = True,
    ):
        self.config = config
        self.run_dir = Path(run_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.reporter = reporter or SilentReporter()
        self._input: dict[str, Any] | None = None  # this worker's input pipeline (streamed sources), logged by run()
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)  # initial weights and dropout follow the seed
        source = source if source is not None else open_source(config.data)
        holdout = fitting_holdout(source.n_train, config.holdout_images) if cap_holdout else config.holdout_images
        if holdout < config.holdout_images:  # saved in config.json, so the predictor holds out the same images
            self.config = config = dataclasses.replace(config, holdout_images=holdout)
        self.source, self.holdout = source.split_holdout(config.holdout_images, config.seed)
        if self.source.n_train < config.batch_size:
            raise DataError(
                f"only {self.source.n_train} training images (of {source.n_train}; {config.holdout_images} held out for the "
                f"accuracy predictor) for batch size {config.batch_size}: lower --batch-size to at most "
                f"{self.source.n_train}, {'hold out fewer (--holdout-images), ' if config.holdout_images else ''}"
                "or bring more images"
            )
        with self.strategy.scope():
            self.net = self._new_supernet(config.dropout_rate)
            self.teacher = self._new_supernet(0.0)
            self.phase_index = tf.Variable(0, dtype=tf.int64, trainable=False, name="phase_index")
            self.step_in_phase = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_phase")
            self.batches_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_done")
            self.variables = list(self.net.trainable_variables)
            self.decay_mask = [_decayed(v) for v in self.variables]
            classifier = {id(v) for v in self.net.classifier.trainable_variables}
            self.in_classifier = [id(v) in classifier for v in self.variables]
            self.optimizer = MomentumSGD(
                self.variables, self.decay_mask, config.momentum, config.weight_decay, config.nesterov
            )
        self._step = self._build_step_function()
        self._manager = None
        self._run_log = RunLog(self.run_dir)
        self._evaluator = None

    # ----- construction ---------------------------------------------------------
    def _new_supernet(self, dropout_rate: float) -> Supernet:
        c = self.config
        previous = keras.mixed_precision.global_policy()
        if c.mixed_precision:  # layers take the policy when constructed; other models are unaffected
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            return supernet_for_space(c.space(self.source.n_classes), dropout_rate=dropout_rate)
        finally:
            keras.mixed_precision.set_global_policy(previous)

    def _checkpoint(self) -> tf.train.Checkpoint:
        # Every weight by position: a tf.train checkpoint of the Keras model itself misses the
        # blocks' BN statistics (layers held in a list) and Keras' seed-generator states (dropout).
        return tf.train.Checkpoint(
            variables=[v.value for v in self.net.variables],
            optimizer=self.optimizer,
            phase_index=self.phase_index,
            step_in_phase=self.step_in_phase,
            batches_done=self.batches_done,
        )

    def _dataset(self, start_batch: int):
        dataset, self._input = training_batches(self.source, self.config, self.strategy, start_batch)
        return dataset

    def _build_step_function(self):
        """One traced function for every step: N subnets in a while loop, then the SGD update.

        Traced once for all phases, resolutions and subnet counts: the images
        have a dynamic size, the N subnets arrive as stacked int32 tensors and
        the teacher's soft targets as an input (computed by `_teacher_targets`,
        a separate function traced only when a phase distills).
        """
        strategy = self.strategy

        @tf.function(input_signature=self._step_signature(), autograph=False)
        def step(images, labels, soft_targets, archs, kd_ratio, backbone_trains):
            losses = strategy.run(self._replica_step, args=(images, labels, soft_targets, archs, kd_ratio, backbone_trains))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

        self._teacher_targets = self._build_teacher_targets()
        return step

    def _step_signature(self) -> list[tf.TypeSpec]:
        """(images, labels, soft targets, stacked subnets, KD ratio, whether the backbone trains); makes
        `_no_targets`, the soft targets of a step that does not distill."""
        images_spec, labels_spec = self._dataset(0).element_spec
        n_classes = self.source.n_classes
        self._no_targets = tf.function(
            lambda labels: self.strategy.run(lambda y: tf.zeros([tf.shape(y)[0], n_classes]), args=(labels,)), autograph=False
        )
        # what strategy.run returns per replica (a plain tensor where there is one local replica)
        targets_spec = tf.type_spec_from_value(self._no_targets.get_concrete_function(labels_spec).structured_outputs)
        return [
            images_spec, labels_spec, targets_spec, self.net.arch_spec(batched=True), tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.bool),
        ]

    def _build_teacher_targets(self):
        teacher_arch = self.teacher.space.max_config()  # static: a graph without control flow

        def teacher_targets(images):
            # As upstream: the teacher runs in training mode (batch statistics), without gradient.
            logits = self.teacher(images, training=True, arch=teacher_arch)
            return tf.stop_gradient(tf.nn.softmax(tf.cast(logits, tf.float32)))

        return tf.function(lambda images: self.strategy.run(teacher_targets, args=(images,)), autograph=False)

    def _replica_step(self, images, labels, soft_targets, archs, kd_ratio, backbone_trains):
        """One replica's step: the subnets' summed gradients applied once; the mean loss over the subnets."""
        n_subnets = tf.shape(archs["depth"])[0]
        accumulated, loss_sum = self._subnet_gradients(images, labels, soft_targets, archs, kd_ratio, n_subnets)
        self._apply_gradients(accumulated, archs, backbone_trains)
        return loss_sum / tf.cast(n_subnets, tf.float32)

    def _subnet_gradients(self, images, labels, soft_targets, archs, kd_ratio, n_subnets):
        """Gradients summed over the `n_subnets` subnets of `archs` on the same batch, and their summed loss."""
        config, net, variables = self.config, self.net, self.variables

        def body(k, accumulated, loss_sum):
            arch = {key: value[k] for key, value in archs.items()}
            with tf.GradientTape() as tape:
                logits = net(images, training=True, arch=arch)
                per_example = label_smoothed_cross_entropy(labels, logits, config.label_smoothing)
                per_example += kd_ratio * soft_target_cross_entropy(soft_targets, logits)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
            grads = tape.gradient(loss, variables)
            summed = [
                a if g is None else a + tf.ensure_shape(tf.cast(g, a.dtype), a.shape)
                for a, g in zip(accumulated, grads)
            ]
            return k + 1, summed, loss_sum + loss

        zeros = [tf.zeros(v.shape, v.dtype) for v in variables]
        # One subnet after the other, as upstream: overlapping iterations would race on the
        # BN running statistics and the dropout seed state (and so break determinism).
        _, accumulated, loss_sum = tf.while_loop(
            lambda k, *_: k < n_subnets, body, (tf.constant(0), zeros, tf.constant(0.0)), parallel_iterations=1
        )
        return accumulated, loss_sum

    def _apply_gradients(self, accumulated, archs, backbone_trains) -> None:
        """The SGD update of the variables the subnets use; a frozen backbone (a new head's phase) gets
        no gradient, no decay and keeps its momentum."""
        in_use = [
            used if head else (backbone_trains if used is None else tf.logical_and(used, backbone_trains))
            for used, head in zip(self.net.variables_in_use(archs), self.in_classifier)
        ]
        accumulated = [
            a if head else a * tf.cast(backbone_trains, a.dtype) for a, head in zip(accumulated, self.in_classifier)
        ]
        self.optimizer.apply(accumulated, in_use=in_use)

    def train_step(
        self,
        images,
        labels,
        subnets: Sequence[Config],
        learning_rate: float,
        distill: bool = True,
        backbone_trains: bool = True,
    ) -> float:
        """One step of progressive shrinking: the reference's `train_one_epoch` inner loop.

        For each subnet, on the same batch: forward in training mode, loss =
        label-smoothed CE + kd_ratio x soft-target CE against the teacher's
        softmax (when `distill`), gradients summed over subnets and replicas;
        then one SGD step (momentum, Nesterov, weight decay off BN and biases)
        at `learning_rate`. Graph rewrites (grappler) are off for this call:
        they cost more time at the first step than they save.

        Args:
            images: a batch (a distributed value under a multi-replica strategy),
                shaped as the training dataset's batches.
            labels: its int64 labels.
            subnets: the subnets to train on this batch.
            learning_rate: the step's learning rate.
            distill: add the distillation term (the teacher must be loaded).
            backbone_trains: False updates the classifier alone (a phase with trains="classifier").

        Returns:
            the loss averaged over the subnets (summed over replicas).
        """
        self.optimizer.learning_rate.assign(learning_rate)
        kd_ratio = self.config.kd_ratio if distill else 0.0
        soft_targets = self._teacher_targets(images) if distill else self._no_targets(labels)
        with graph_rewrites_off():
            loss = self._step(
                images, labels, soft_targets, self.net.stack_arch(subnets), tf.constant(kd_ratio, tf.float32),
                tf.constant(backbone_trains),
            )
        return float(loss)

    # ----- run --------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Runs (or resumes) every phase; returns the evaluation rows of all phases."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self._restore_latest_checkpoint()
        if resumed:
            self._reopen_last_phase()  # before the config is rewritten: a refused extension changes nothing
        atomic_write_json(self.run_dir / CONFIG_FILE, self.config.to_dict())
        if self._input:  # filled when the streamed pipeline was made
            self._log(self._input)
        if not resumed and self.config.init:
            self._initialize_from(self.config.init)
        results = self._load_results()
        for index in range(int(self.phase_index.numpy()), len(self.config.phases)):
            phase = self.config.phases[index]
            self._run_phase(index, phase)
            started = time.perf_counter()
            rows = self.evaluate(phase)
            results = [r for r in results if r["phase"] != phase.name] + rows
            atomic_write_json(self.run_dir / RESULTS_FILE, results)
            self._log({"event": "evaluation", "phase": phase.name, "rows": rows, "seconds": time.perf_counter() - started})
            self.reporter.phase_end(phase, rows)
            if phase.name == "teacher":
                save_supernet(
                    self.net, self.run_dir / TEACHER_DIR, source={"phase": "teacher"}, resolutions=self.config.resolutions
                )
            self.phase_index.assign(index + 1)
            if index + 1 < len(self.config.phases):  # the last phase keeps its count, for _reopen_last_phase
                self.step_in_phase.assign(0)
            self._save_checkpoint()
        save_supernet(
            self.net,
            self.run_dir / SUPERNET_DIR,
            source={"run": str(self.run_dir), "config": self.config.to_dict(), "data": self._data_card()},
            resolutions=self.config.resolutions,
        )
        return results

    def _data_card(self) -> dict[str, Any]:
        """What the supernet was trained on, for its card."""
        return {
            "data": self.config.data,
            "classes": list(self.source.class_names),
            "training_images": self.source.n_train,
            "held_out_for_predictor": self.config.holdout_images,
            "initialized_from": self.config.init,
        }

    def _restore_latest_checkpoint(self) -> bool:
        """Restores weights, optimizer state and position from the latest checkpoint; False if there is none."""
        latest = tf.train.latest_checkpoint(str(self.run_dir / CHECKPOINT_DIR))
        if latest is not None:
            self._checkpoint().read(latest).assert_existing_objects_matched()
        return latest is not None

    def _reopen_last_phase(self) -> None:
        """A finished run resumed with a larger --max-steps continues its last phase up to that many
        steps, with its optimizer state; the earlier phases stay as they were trained."""
        last = len(self.config.phases) - 1
        if int(self.phase_index.numpy()) <= last:
            return
        phase, done = self.config.phases[last], int(self.step_in_phase.numpy())
        _, total = phase_steps(phase, self.source.n_train, self.config.batch_size, self.config.max_steps_per_phase)
        _, full = phase_steps(phase, self.source.n_train, self.config.batch_size, None)
        if full <= done:
            raise ConfigError(
                f"{self.run_dir} finished all its phases, its last ({phase.name}) on its full schedule ({done} steps): "
                "--max-steps caps a phase, it cannot lengthen one; start a new run with more epochs (--config)"
            )
        if total <= done:
            raise ConfigError(
                f"{self.run_dir} finished all its phases ({done} steps in its last, {phase.name}): "
                f"resume with --max-steps above {done} to train that phase longer"
            )
        self.phase_index.assign(last)
        self._log({"event": "extend", "phase": phase.name, "from_step": done, "to_step": total})

    def _initialize_from(self, supernet_dir: str) -> None:
        """Starts from a pretrained supernet: its weights (its classifier where the classes match),
        then the full network's BN statistics re-estimated on this run's images."""
        kept = transfer_weights(load_supernet(supernet_dir), self.net)
        resolution = max(self.config.resolutions)
        self._get_evaluator().recalibrate(self.net.space.max_config(), resolution)
        self.net.set_max_net()
        self._log({
            "event": "init", "supernet": str(supernet_dir), "classifier": "kept" if kept else "new",
            "bn_recalibrated_at": resolution,
        })

    def _load_results(self) -> list[dict[str, Any]]:
        path = self.run_dir / RESULTS_FILE
        return read_json(path, f"remove it: each phase's results are measured again when {self.run_dir} resumes") if path.is_file() else []

    def _save_checkpoint(self) -> None:
        """Saves through `CheckpointManager`: data files first, then the index and the
        `checkpoint` state file, so a killed save leaves the previous checkpoint in force."""
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(self._checkpoint(), str(self.run_dir / CHECKPOINT_DIR), max_to_keep=3)
        self._manager.save(checkpoint_number=int(self.batches_done.numpy()))

    def _prepare_teacher(self, phase: PhaseConfig) -> None:
        if not phase.kd:
            return
        teacher_dir = self.run_dir / TEACHER_DIR
        if not teacher_dir.is_dir() and self.config.teacher:
            teacher_dir = Path(self.config.teacher)
        if not (teacher_dir / "supernet.json").is_file():
            raise ConfigError(
                f"phase {phase.name} distills from a teacher, but there is none: run the teacher phase first "
                "or pass --teacher SUPERNET_DIR (a trained full network)"
            )
        source = load_supernet(teacher_dir)
        for target, value in zip(self.teacher.weights, source.weights):
            target.assign(value)

    def _run_phase(self, index: int, phase: PhaseConfig) -> None:
        config = self.config
        start_step = int(self.step_in_phase.numpy())
        if start_step == 0:  # a resumed phase already has its weights and optimizer state
            self.optimizer.reset()  # upstream builds a new optimizer per phase
            if phase.reorganize_stage is not None:
                self.net.re_organize_middle_weights(phase.reorganize_stage)
        self._prepare_teacher(phase)
        warmup, total = phase_steps(phase, self.source.n_train, config.batch_size, config.max_steps_per_phase)
        peak_lr = scaled_lr(phase.base_lr, config.batch_size)
        batches = iter(self._dataset(int(self.batches_done.numpy())))
        self.reporter.phase_start(phase, index, total, start_step)
        for step in range(start_step, total):
            started = time.perf_counter()
            images, labels = next(batches)
            lr = learning_rate(step, warmup, total - warmup, phase.base_lr, peak_lr)
            global_step = int(self.batches_done.numpy())
            subnets = [
                self.net.space.sample_phase(np.random.default_rng([config.seed, global_step, k]), phase.choices)
                for k in range(phase.subnets_per_step)
            ]
            loss = self.train_step(images, labels, subnets, lr, distill=phase.kd, backbone_trains=phase.trains == "all")
            if not np.isfinite(loss):
                raise DivergedError(f"loss is {loss} at step {step + 1} of phase {phase.name}: lower the learning rate")
            self.batches_done.assign_add(1)
            self.step_in_phase.assign(step + 1)
            metrics = {
                "phase": phase.name,
                "step": step + 1,
                "total_steps": total,
                "loss": loss,
                "lr": lr,
                "images_per_second": config.batch_size / (time.perf_counter() - started),
                "skipped_images": self.source.counter.count,
            }
            self.reporter.step(metrics)
            self._log({"event": "step", **metrics})
            if (step + 1) % config.checkpoint_every == 0 and step + 1 < total:
                self._save_checkpoint()
        self.net.set_max_net()

    # ----- evaluation ----------------------------------------------------------
    def _get_evaluator(self) -> SubnetEvaluator:
        """One per run: its traced forward and recalibration batches serve every phase."""
        if self._evaluator is None:
            config = self.config
            self._evaluator = SubnetEvaluator(
                self.net,
                self.source.recalibration_images(config.bn_recalibration_images, seed=config.seed),
                config.bn_recalibration_batch,
                config.seed,
                config.crop_scale,
            )
        return self._evaluator

    def evaluate(self, phase: PhaseConfig) -> list[dict[str, Any]]:
        """Top-1 of the min / mid / max subnets of `phase` at each eval resolution, after BN recalibration.

        A phase that trains one subnet only (the teacher phase) has trained that
        subnet's running statistics: it is measured with them, as upstream
        validates its separately trained full network (no recalibration).
        """
        config = self.config
        evaluator = self._get_evaluator()
        recalibrate = not phase.trains_one_subnet
        rows, measured = [], {}
        with preserved_bn_statistics(self.net):
            for resolution in config.eval_resolutions:
                for label in ("min", "mid", "max"):
                    subnet = self.net.space.phase_config(phase.choices, label)
                    if (subnet, resolution) not in measured:  # e.g. the teacher phase: min = mid = max
                        measured[subnet, resolution] = evaluator.top1(
                            subnet, resolution, self.source.test_examples(), recalibrate=recalibrate
                        )
                    rows.append({
                        "phase": phase.name, "subnet": label, "resolution": resolution,
                        "top1": measured[subnet, resolution], "bn_recalibrated": recalibrate, **subnet.to_dict(),
                    })
        return rows

    def _log(self, record: dict[str, Any]) -> None:
        self._run_log.write(record, int(self.batches_done.numpy()))


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config of an existing run (for `--resume`)."""
    from ofa_tf.training.config import config_from_dict

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise MissingFileError(f"{run_dir} is not a training run: {CONFIG_FILE} is missing (start one with `ofa-tf train --out DIR`)")
    data = read_json(path, f"start a new run with --out (the config of {run_dir} cannot be read back)")
    if data.get("init") and (Path(data["init"]) / CARD_FILE).is_file():
        pretrained_space(data["init"])  # registers a family the pretrained card carries (a converted Keras network)
    return config_from_dict(data)


__all__ = ["ProgressiveShrinkingTrainer", "Reporter", "load_run_config", "phase_steps"]
