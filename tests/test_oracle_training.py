"""The training step equals the official trainer's (`train_one_epoch` inner loop), phase by phase.

Oracle: the official OFA-MobileNetV3 (PyTorch, random init, 10 classes,
dropout 0) trained by a replica of `progressive_shrinking.train_one_epoch`'s
inner loop with the official loss functions and `build_optimizer`. ofa-tf:
the same weights converted, stepped by `ProgressiveShrinkingTrainer.train_step`
(the method the trainer itself uses) on the same batch, subnets and learning
rates. Three steps of each phase type are compared: the loss, the weight
updates, the momentum buffers and the BN running statistics of the student
and of the teacher (which runs in training mode, as upstream's).

Gradients of a random network are ill-conditioned in float32: the official
trainer in float32 differs from itself in float64 by up to ~1e-2 of the
largest gradient, depending on the weights and batch. So the reference is
the official trainer in float64, and ofa-tf must be within 1e-4 of it, or
no further from it than 3x the official float32 trainer. Training is also
chaotic (from weights 1e-7 apart the official trainer differs by 1e-2 after
two steps), so every step starts all three from the reference's weights and
BN statistics; each keeps its own momentum buffers. Which tensors are
updated at all (unused blocks and kernel matrices, weight decay) is compared
exactly.
"""

import copy

import numpy as np
import official_oracle as oracle
import pytest
import torch
import torch.nn.functional as F
from ofa.utils.pytorch_utils import build_optimizer, cross_entropy_loss_with_soft_target, cross_entropy_with_label_smoothing

from ofa_tf._backend import tf
from ofa_tf.data.arrays import ArraySource
from ofa_tf.interop.official import assign_official_state_dict, official_key_map
from ofa_tf.training.config import apply_overrides
from ofa_tf.training.presets import cifar_preset
from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

WIDTH, BATCH, RESOLUTION, CLASSES = 0.25, 8, 32, 10
LEARNING_RATES = (0.08, 0.05, 0.02)  # changes every step, as the cosine schedule does
NO_DECAY_KEYS = ("bn", "bias")  # the reference's `no_decay_keys = "bn#bias"`
# (name, subnets per step, distill, ks choices, e choices, d choices, reorganize stage)
SLOW = pytest.mark.slow  # the default tier checks the kernel and expand phases (distillation, 4 subnets, reorganized)
PHASES = [
    pytest.param(("teacher", 1, False, (7,), (6,), (4,), None), marks=SLOW, id="teacher"),
    pytest.param(("kernel", 1, True, (3, 5, 7), (6,), (4,), None), id="kernel"),
    pytest.param(("depth", 2, True, (3, 5, 7), (6,), (3, 4), None), marks=SLOW, id="depth"),
    pytest.param(("expand", 4, True, (3, 5, 7), (4, 6), (2, 3, 4), 1), id="expand"),
]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * BATCH, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    labels = np.arange(2 * BATCH) % CLASSES
    source = ArraySource(images, labels, images[:BATCH], labels[:BATCH], tuple(str(i) for i in range(CLASSES)))
    config = apply_overrides(cifar_preset(), dict(
        width_mult=WIDTH, depth_list=[2, 3, 4], resolutions=[RESOLUTION], eval_resolutions=[RESOLUTION],
        batch_size=BATCH, dropout_rate=0.0, holdout_images=0))
    return ProgressiveShrinkingTrainer(config, tmp_path_factory.mktemp("run"), source=source)


class OfficialTrainer:
    """The official student, teacher and optimizer (`RunManager`'s) in one float precision."""

    def __init__(self, student, teacher, dtype, config):
        self.dtype = dtype
        self.student = copy.deepcopy(student).to(dtype)
        self.teacher = copy.deepcopy(teacher).to(dtype)
        params = [
            list(self.student.get_parameters(NO_DECAY_KEYS, mode="exclude")),
            list(self.student.get_parameters(NO_DECAY_KEYS, mode="include")),
        ]
        self.optimizer = build_optimizer(params, "sgd", {"momentum": config.momentum, "nesterov": config.nesterov}, 0.1,
                                         config.weight_decay, "#".join(NO_DECAY_KEYS))
        self.config = config

    def load(self, student_state, teacher_state):
        for net, state in ((self.student, student_state), (self.teacher, teacher_state)):
            net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            net.to(self.dtype)

    def step(self, images, labels, subnets, learning_rate, distill) -> float:
        """`train_one_epoch`'s inner loop for one batch, with explicit subnets; the mean loss."""
        images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(self.dtype)
        labels = torch.from_numpy(labels)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        if distill:
            self.teacher.train()
            with torch.no_grad():
                soft_label = F.softmax(self.teacher(images).detach(), dim=1)
        self.student.train()
        self.student.zero_grad()
        losses = []
        for subnet in subnets:
            self.student.set_active_subnet(ks=list(subnet.ks), e=list(subnet.e), d=list(subnet.d))
            output = self.student(images)
            loss = cross_entropy_with_label_smoothing(output, labels, self.config.label_smoothing)
            if distill:
                loss = self.config.kd_ratio * cross_entropy_loss_with_soft_target(output, soft_label) + loss
            loss.backward()
            losses.append(float(loss))
        self.optimizer.step()
        return float(np.mean(losses))

    def snapshot(self, keys, teacher_keys) -> dict[str, dict[str, np.ndarray]]:
        """Weights, momenta and running statistics in ofa-tf's layout (float64)."""
        state = {k: v.double().numpy().copy() for k, v in self.student.state_dict().items()}
        teacher = {k: v.double().numpy().copy() for k, v in self.teacher.state_dict().items()}
        momenta = {}
        for key, parameter in self.student.named_parameters():
            buffer = self.optimizer.state.get(parameter, {}).get("momentum_buffer")
            if buffer is not None:  # None: no subnet has used it yet, so upstream never updated it
                momenta[key] = keys[key][1](buffer.double().numpy().copy())
        return _split({k: t(state[k]) for k, (_, t) in keys.items()},
                      {k: t(teacher[k]) for k, (_, t) in teacher_keys.items() if "running" in k}, momenta)


def _split(values, teacher_running, momenta) -> dict[str, dict[str, np.ndarray]]:
    return {
        "weights": {k: v for k, v in values.items() if "running" not in k},
        "running": {k: v for k, v in values.items() if "running" in k},
        "teacher_running": teacher_running,
        "momenta": momenta,
    }


def _ours(trainer, keys, teacher_keys) -> dict[str, dict[str, np.ndarray]]:
    buffers = {id(v): b for v, b in zip(trainer.optimizer._variables, trainer.optimizer.momentum_buffers)}
    momenta = {k: buffers[id(getattr(v, "value", v))].numpy().astype(np.float64)
               for k, (v, _) in keys.items() if "running" not in k}
    return _split({k: v.numpy().astype(np.float64) for k, (v, _) in keys.items()},
                  {k: v.numpy().astype(np.float64) for k, (v, _) in teacher_keys.items() if "running" in k}, momenta)


def _network_error(got: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Largest difference over the network, relative to the largest reference value."""
    scale = max(float(np.abs(v).max()) for v in reference.values())
    return max(float(np.abs(got[k] - reference[k]).max()) for k in reference) / scale


def _errors(after, before, reference_after, reference_before) -> dict[str, float]:
    updates = {k: after["weights"][k] - before["weights"][k] for k in before["weights"]}
    reference_updates = {k: reference_after["weights"][k] - reference_before["weights"][k] for k in reference_before["weights"]}
    errors = {"updates": _network_error(updates, reference_updates)}
    for kind in ("momenta", "running", "teacher_running"):
        errors[kind] = _network_error(after[kind], reference_after[kind])
    return errors


def test_weight_decay_follows_the_official_parameter_groups(trainer):
    official = oracle.official_supernet(WIDTH, n_classes=CLASSES)
    decayed = {name for name, _ in official.named_parameters() if not any(key in name for key in NO_DECAY_KEYS)}
    keys = official_key_map(trainer.net)
    ours = {id(getattr(v, "value", v)): d for v, d in zip(trainer.variables, trainer.decay_mask)}
    assert {k for k, _ in official.named_parameters() if ours[id(getattr(keys[k][0], "value", keys[k][0]))]} == decayed
    assert 0 < len(decayed) < len(list(official.parameters()))


@pytest.mark.parametrize("phase", PHASES)
def test_train_step_equals_the_official_trainer(trainer, phase):
    name, n_subnets, distill, ks_list, e_list, d_list, reorganize = phase
    student = oracle.official_supernet(WIDTH, n_classes=CLASSES, seed=20 + len(name))
    teacher = oracle.official_supernet(WIDTH, n_classes=CLASSES, seed=40 + len(name))
    if reorganize is not None:
        student.re_organize_middle_weights(expand_ratio_stage=reorganize)
    reference = OfficialTrainer(student, teacher, torch.float64, trainer.config)
    official = OfficialTrainer(student, teacher, torch.float32, trainer.config)
    trainer.optimizer.reset()
    keys, teacher_keys = official_key_map(trainer.net), official_key_map(trainer.teacher)
    rng = np.random.default_rng(len(name))
    worst = {"ours": {}, "official float32": {}}
    for learning_rate in LEARNING_RATES:
        state = {k: v.numpy().copy() for k, v in reference.student.state_dict().items()}
        teacher_state = {k: v.numpy().copy() for k, v in reference.teacher.state_dict().items()}
        float32 = {k: v.astype(np.float32) for k, v in state.items()}
        teacher32 = {k: v.astype(np.float32) for k, v in teacher_state.items()}
        official.load(float32, teacher32)
        assign_official_state_dict(trainer.net, float32)
        assign_official_state_dict(trainer.teacher, teacher32)
        before = {"ours": _ours(trainer, keys, teacher_keys), "official float32": official.snapshot(keys, teacher_keys)}
        reference_before = reference.snapshot(keys, teacher_keys)

        images = rng.normal(size=(BATCH, RESOLUTION, RESOLUTION, 3)).astype(np.float32)
        labels = rng.integers(0, CLASSES, BATCH)
        subnets = [trainer.net.space.sample_restricted(rng, ks_list, e_list, d_list) for _ in range(n_subnets)]
        loss = {
            "reference": reference.step(images, labels, subnets, learning_rate, distill),
            "official float32": official.step(images, labels, subnets, learning_rate, distill),
            "ours": trainer.train_step(tf.constant(images), tf.constant(labels, tf.int64), subnets, learning_rate, distill=distill),
        }
        after = {"ours": _ours(trainer, keys, teacher_keys), "official float32": official.snapshot(keys, teacher_keys)}
        reference_after = reference.snapshot(keys, teacher_keys)
        for who in worst:
            errors = _errors(after[who], before[who], reference_after, reference_before)
            errors["loss"] = abs(loss[who] - loss["reference"]) / abs(loss["reference"])
            for kind, value in errors.items():
                worst[who][kind] = max(worst[who].get(kind, 0.0), value)
        # exactly what upstream leaves alone is left alone: tensors no subnet has used yet
        unused = [k for k in reference_after["weights"] if k not in reference_after["momenta"]]
        for key in unused:
            assert np.array_equal(after["ours"]["weights"][key], before["ours"]["weights"][key]), key
            assert not np.any(after["ours"]["momenta"][key]), key
        assert len(reference_after["momenta"]) > 50  # the steps did move most weights

    for who, errors in worst.items():
        print(f"{name} {who}: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    # At 32 px the last stages are 1x1 and BN normalizes over 8 values, so float32 rounding
    # is amplified: the official float32 step reached 3.3e-4 (depth phase) and ours 8.1e-4
    # (expand phase, AVX-only CPU) against the float64 reference. A wrong gradient, mask or
    # update shows as 1e-2 and more (the distillation term weighted 5% low: 2.3e-2;
    # uninitialized gradients: 1e30).
    for kind, value in worst["ours"].items():
        assert value <= max(1e-3, 3 * worst["official float32"][kind]), (kind, worst)
