"""Progressive shrinking: config, schedule, losses, a tiny end-to-end run, and resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ofa_tf import ConfigError
from ofa_tf.training.config import PhaseConfig, apply_overrides, config_from_dict, load_overrides, select_phases
from ofa_tf.training.presets import cifar_preset, paper_preset
from ofa_tf.training.schedule import learning_rate, scaled_lr

TINY_PHASES = [
    dict(name="teacher", ks_list=[7], expand_ratio_list=[6], depth_list=[4], epochs=1, warmup_epochs=0, base_lr=0.05, subnets_per_step=1, kd=False),
    dict(name="kernel", ks_list=[3, 5, 7], expand_ratio_list=[6], depth_list=[4], epochs=1, warmup_epochs=0, base_lr=0.02, subnets_per_step=1),
    # depth at most 3 while the supernet's goes to 4: subnets still have an entry per block
    dict(name="expand_1", ks_list=[3, 5, 7], expand_ratio_list=[4, 6], depth_list=[2, 3], epochs=1, warmup_epochs=0, base_lr=0.01, subnets_per_step=2, reorganize_stage=0),
]
TINY = dict(
    width_mult=0.25, depth_list=[2, 3, 4], resolutions=[24, 32], eval_resolutions=[32], batch_size=16,
    bn_recalibration_images=64, bn_recalibration_batch=32, phases=TINY_PHASES,
)
# A supernet of depth 2 (10 blocks, none skippable): the trainer's code paths but the depth
# switch at ~35% of TINY's tracing cost, for tests about something other than the architecture
# (depth is covered by the oracle, one-trace and extraction tests)
SHALLOW = {**TINY, "depth_list": [2], "phases": [{**p, "depth_list": [2]} for p in TINY_PHASES]}


def test_presets_follow_the_reference():
    paper = paper_preset()
    assert [p.name for p in paper.phases] == ["teacher", "kernel", "depth_1", "depth_2", "expand_1", "expand_2"]
    kernel, depth_1, expand_2 = paper.phases[1], paper.phases[2], paper.phases[5]
    assert (kernel.epochs, kernel.warmup_epochs, kernel.base_lr, kernel.subnets_per_step) == (120, 5, 3e-2, 1)
    assert depth_1.choices["d"] == (3, 4) and depth_1.subnets_per_step == 2 and depth_1.base_lr == 2.5e-3
    assert expand_2.choices["e"] == (3, 4, 6) and expand_2.reorganize_stage == 1 and expand_2.subnets_per_step == 4
    assert paper.batch_size == 2048 and scaled_lr(kernel.base_lr, paper.batch_size) == pytest.approx(0.96)
    assert paper.weight_decay == 3e-5 and paper.label_smoothing == 0.1 and paper.kd_ratio == 1.0
    assert cifar_preset().width_mult == 0.5


@pytest.mark.parametrize("family", ["mbv3", "proxyless", "resnet50"])
def test_presets_shrink_every_family_in_the_order_of_its_choices(family):
    from ofa_tf.space.registry import make_space

    space = make_space(family)
    names = [choice.name for choice in space.CHOICES]
    for config in (paper_preset(family), cifar_preset(family)):
        teacher = config.phases[0]
        assert not teacher.kd and all(teacher.choices[n] == config.choices[n][-1:] for n in names)
        opened = []  # choice names in the order the phases widen them
        for before, phase in zip(config.phases, config.phases[1:]):
            opened += [n for n in names if len(phase.choices[n]) > len(before.choices[n]) and n not in opened]
        assert opened == names and all(config.phases[-1].choices[n] == config.choices[n] for n in names)
        assert all(not phase.choices[n] for phase in config.phases for n in phase.choices if n not in names)
    assert cifar_preset(family).width_mult == (0.5 if space.SCALABLE_WIDTH else 1.0)
    assert max(cifar_preset(family).choices["d"]) <= 3
    if not space.SCALABLE_WIDTH:
        with pytest.raises(ConfigError, match="widths are choices of every subnet"):
            apply_overrides(cifar_preset(family), {"width_mult": 0.5})


def test_choices_are_held_by_name_and_cards_with_one_field_per_choice_still_load():
    config = cifar_preset("resnet50")
    assert set(config.choices) == {"d", "e", "w"} and all(set(p.choices) == {"d", "e", "w"} for p in config.phases)
    saved = json.loads(json.dumps(config.to_dict()))
    assert config_from_dict(saved) == config
    fields = {"ks": "ks_list", "e": "expand_ratio_list", "d": "depth_list", "w": "width_mult_list"}
    flat = lambda d: {**{k: v for k, v in d.items() if k != "choices"}, **{fields[n]: v for n, v in d["choices"].items()}}  # noqa: E731
    legacy = {**flat(saved), "ks_list": [], "phases": [{**flat(p), "ks_list": []} for p in saved["phases"]]}
    assert config_from_dict(legacy) == config  # a run's config.json from before, empty lists for other families' choices
    with pytest.raises(ConfigError, match="ks_list is not a choice of resnet50"):
        apply_overrides(config, {"ks_list": [3]})
    with pytest.raises(ConfigError, match="unknown choices \\['k'\\]"):
        apply_overrides(config, {"choices": {"k": [3]}})


def test_the_docs_config_file_example_applies(tmp_path):
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "training.md").read_text()
    (block,) = [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith("yaml")]
    (tmp_path / "my.yaml").write_text(block)
    config = apply_overrides(cifar_preset(), load_overrides(tmp_path / "my.yaml"))
    assert config.choices["d"] == (2, 3) and [p.name for p in config.phases] == ["teacher", "kernel"]
    assert config.phases[1].choices == {"ks": (3, 5, 7), "e": (6,), "d": (3,)}


def test_overrides_and_their_errors(tmp_path):
    config = apply_overrides(cifar_preset(), {"batch_size": 32, "resolutions": "24,32", "depth_list": [2, 3, 4]})
    assert config.batch_size == 32 and config.resolutions == (24, 32)
    with pytest.raises(ConfigError, match="unknown training options \\['batchsize'\\]"):
        apply_overrides(config, {"batchsize": 3})
    with pytest.raises(ConfigError, match="batch_size=0"):
        apply_overrides(config, {"batch_size": 0})
    with pytest.raises(ConfigError, match="resolutions="):
        apply_overrides(config, {"resolutions": "a,b"})
    with pytest.raises(ConfigError, match="ks_list \\[9\\] not in"):
        apply_overrides(config, {"phases": [{**TINY_PHASES[0], "ks_list": [9]}]})
    with pytest.raises(ConfigError, match="unknown phases \\['warmup'\\]"):
        select_phases(config, ["warmup"])
    path = tmp_path / "over.yaml"
    path.write_text("batch_size: 8\ndepth_list: [2, 3, 4]\nphases:\n  - {name: teacher, ks_list: [7], expand_ratio_list: [6], depth_list: [4], epochs: 1, warmup_epochs: 0, base_lr: 0.1, subnets_per_step: 1, kd: false}\n")
    loaded = apply_overrides(cifar_preset(), load_overrides(path))
    assert loaded.batch_size == 8 and loaded.phases == (PhaseConfig("teacher", {"ks": (7,), "e": (6,), "d": (4,)}, 1, 0, 0.1, 1, kd=False),)
    path.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_overrides(path)


def test_eval_resolutions_follow_the_training_resolutions_unless_set():
    config = apply_overrides(cifar_preset(), {"resolutions": "128,160,192"})
    assert config.eval_resolutions == (128, 192)
    config = apply_overrides(cifar_preset(), {"resolutions": [128], "eval_resolutions": [96, 128]})
    assert config.eval_resolutions == (96, 128)
    with pytest.raises(ConfigError, match="depth_list is empty"):
        apply_overrides(cifar_preset(), {"phases": [{**TINY_PHASES[0], "depth_list": []}]})


def test_phase_choices_narrower_than_the_supernet_give_full_length_subnets():
    from ofa_tf import SearchSpace

    space = SearchSpace(width_mult=0.25, depth_list=(2, 3, 4))
    rng = np.random.default_rng(0)
    configs = [space.sample_restricted(rng, (3, 5), (4,), (2, 3)) for _ in range(20)]
    assert all(len(c.ks) == space.n_blocks == 20 and len(c.d) == 5 for c in configs)
    assert {v for c in configs for v in c.d} == {2, 3} and {v for c in configs for v in c.ks} == {3, 5}
    assert {v for c in configs for v in c.e} == {4}
    narrow = SearchSpace(width_mult=0.25, depth_list=(2, 3))  # a supernet of depth <= 3: 15 blocks
    assert len(narrow.sample_restricted(rng, (3,), (6,), (3,)).ks) == narrow.n_blocks == 15


def test_learning_rate_warmup_then_cosine():
    assert learning_rate(0, 10, 100, 0.01, 0.1) == pytest.approx(0.01)
    assert learning_rate(5, 10, 100, 0.01, 0.1) == pytest.approx(0.055)
    assert learning_rate(10, 10, 100, 0.01, 0.1) == pytest.approx(0.1)
    assert learning_rate(60, 10, 100, 0.01, 0.1) == pytest.approx(0.05)
    assert learning_rate(110, 10, 100, 0.01, 0.1) == pytest.approx(0.0)


def test_losses_match_their_formulas():
    from ofa_tf.training.losses import label_smoothed_cross_entropy, soft_target_cross_entropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 10)).astype(np.float32)
    labels = np.array([0, 3, 9, 2])
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    targets = np.full((4, 10), 0.1 / 10) + 0.9 * np.eye(10)[labels]
    expected = -(targets * log_softmax).sum(1)
    assert np.allclose(label_smoothed_cross_entropy(labels, logits, 0.1).numpy(), expected, atol=1e-5)
    soft = np.exp(logits[::-1]) / np.exp(logits[::-1]).sum(1, keepdims=True)
    assert np.allclose(soft_target_cross_entropy(soft, logits).numpy(), -(soft * log_softmax).sum(1), atol=1e-5)


# 3 phases x 8 steps, deterministic: run once in process (the tiny end-to-end test), and the
# uninterrupted reference of the kill-and-resume test
RESUMABLE = {**SHALLOW, "max_steps_per_phase": 8, "checkpoint_every": 2, "deterministic": True}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    trainer = ProgressiveShrinkingTrainer(apply_overrides(cifar_preset(), RESUMABLE), run_dir)
    before = trainer.net.blocks[2].project_conv.kernel.numpy().copy()
    return trainer, trainer.run(), before


@pytest.mark.slow
def test_tiny_progressive_shrinking_run(tiny_run):
    from ofa_tf import load_supernet

    trainer, results, before = tiny_run
    run_dir = trainer.run_dir
    assert trainer._step.experimental_get_tracing_count() == 1  # all phases, resolutions, subnet counts
    assert [r["phase"] for r in results] == ["teacher"] * 3 + ["kernel"] * 3 + ["expand_1"] * 3
    assert all(0 <= r["top1"] <= 100 for r in results)
    # the teacher phase trains one subnet: measured with its trained BN statistics, the others recalibrated
    assert [r["bn_recalibrated"] for r in results] == [False] * 3 + [True] * 6
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s["event"] == "step"]
    assert len(steps) == 24 and all(np.isfinite(s["loss"]) for s in steps)
    assert not np.allclose(before, trainer.net.blocks[2].project_conv.kernel.numpy())
    for folder in ("teacher", "supernet"):  # each card names the resolutions the run trained at
        card = json.loads((run_dir / folder / "supernet.json").read_text())
        assert card["search_space"]["resolutions"] == [24, 32]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    net = load_supernet(run_dir / "supernet")
    assert np.array_equal(net.blocks[2].project_conv.kernel.numpy(), trainer.net.blocks[2].project_conv.kernel.numpy())
    assert json.loads((run_dir / "config.json").read_text())["batch_size"] == 16


def test_a_proxyless_supernet_trains_with_one_trace(tmp_path):
    from ofa_tf import OFAProxylessNASNets, load_supernet
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    # the expand phase alone (reorganized channels, 2 subnets per step, no teacher: covered by the MobileNetV3
    # runs); the one-block last stage stays at depth 1
    phases = [{**TINY_PHASES[2], "kd": False}]
    config = apply_overrides(cifar_preset(), {**TINY, "family": "proxyless", "depth_list": [2], "max_steps_per_phase": 2,
                                              "phases": [{**p, "depth_list": [2]} for p in phases]})
    trainer = ProgressiveShrinkingTrainer(config, tmp_path / "run")
    results = trainer.run()
    assert isinstance(trainer.net, OFAProxylessNASNets) and trainer.net.space.n_blocks == 11
    assert trainer._step.experimental_get_tracing_count() == 1
    assert [r["phase"] for r in results] == ["expand_1"] * 3 and all(r["d"][-1] == 1 for r in results)
    assert isinstance(load_supernet(tmp_path / "run" / "supernet"), OFAProxylessNASNets)


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    """A narrow ResNet50-D (width multipliers 0.2 / 0.25) trained for the width phase alone (every choice
    elastic; without distillation, so no teacher phase: the teacher's own step and graph are covered by the
    MobileNetV3 runs): (trainer, results, a block's kernel before training)."""
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    config = cifar_preset("resnet50")
    phases = [{**config.phases[-1].__dict__, "width_mult_list": (0.2, 0.25), "kd": False}]
    config = apply_overrides(config, {**{k: v for k, v in TINY.items() if k not in ("width_mult", "depth_list", "phases")},
                                      "width_mult_list": (0.2, 0.25), "max_steps_per_phase": 2, "phases": phases})
    trainer = ProgressiveShrinkingTrainer(config, tmp_path_factory.mktemp("resnet") / "run")
    before = trainer.net.blocks[3].conv3.kernel.numpy().copy()
    return trainer, trainer.run(), before


@pytest.mark.slow
def test_a_resnet_supernet_trains_with_one_trace(resnet_run):
    from ofa_tf import OFAResNets, load_supernet

    trainer, results, before = resnet_run
    assert isinstance(trainer.net, OFAResNets) and trainer._step.experimental_get_tracing_count() == 1
    assert [r["phase"] for r in results] == ["width"] * 3
    assert [(r["w"][0], r["e"][0], r["d"][1]) for r in results[-3:]] == [(0, 0.2, 0), (1, 0.25, 1), (1, 0.35, 2)]
    assert all(0 <= r["top1"] <= 100 for r in results)
    assert not np.allclose(before, trainer.net.blocks[3].conv3.kernel.numpy())
    assert isinstance(load_supernet(trainer.run_dir / "supernet"), OFAResNets)


@pytest.mark.slow
def test_a_resnet_run_gets_a_predictor_and_specializes_under_a_macs_budget(resnet_run, tmp_path):
    """The user's commands on a ResNet run: predictor build / train, specialize by MACs (a latency budget
    without a table is refused in one line), the subnet extracted with the chosen MACs."""
    import keras
    from click.testing import CliRunner

    from ofa_tf import count_model_macs
    from ofa_tf.cli.main import main
    from ofa_tf.supernet.counting import EfficiencyTable

    run = str(resnet_run[0].run_dir)
    invoke = lambda *args: CliRunner().invoke(main, [str(a) for a in args])  # noqa: E731
    built = invoke("predictor", "build", "--supernet", run, "--n-subnets", 10, "--holdout-images", 100, "--bn-images", 32)
    assert built.exit_code == 0, built.output
    trained = invoke("predictor", "train", "--supernet", run, "--epochs", 20)
    assert trained.exit_code == 0, trained.output
    space = resnet_run[0].net.space
    low, high = EfficiencyTable(space).macs(space.to_indices([space.min_config(24), space.max_config(32)]))
    budget = (low + high) / 2 / 1e6
    out = tmp_path / "out"
    result = invoke("specialize", "--supernet", run, "--budget", f"{budget:.2f}M-MACs", "--out", out,
                    "--generations", 20, "--population", 16, "--bn-images", 32)
    assert result.exit_code == 0, result.output
    (folder,) = out.iterdir()
    summary = json.loads((folder / "subnet.json").read_text())
    assert set(summary["config"]) >= {"d", "e", "w"} and summary["macs"] <= budget * 1e6
    assert 0 <= summary["measured_top1"] <= 100
    assert count_model_macs(keras.models.load_model(folder / "subnet.keras")) == summary["macs"]
    refused = invoke("specialize", "--supernet", run, "--budget", "5ms@pixel7", "--out", tmp_path / "lat")
    assert refused.exit_code != 0 and "no latency table 'pixel7'" in refused.output and "Traceback" not in refused.output


def test_mixed_precision_step_runs_in_bfloat16(tmp_path):
    import keras

    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    config = apply_overrides(cifar_preset(), {**SHALLOW, "phases": SHALLOW["phases"][:1], "mixed_precision": True})
    trainer = ProgressiveShrinkingTrainer(config, tmp_path / "run")
    assert trainer.net.blocks[0].expand_conv.compute_dtype == "bfloat16"
    assert trainer.net.blocks[0].expand_conv.kernel.dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # not leaked to other models
    images, labels = next(iter(trainer._dataset(0)))
    before = trainer.net.blocks[2].project_conv.kernel.numpy().copy()
    space = trainer.net.space
    losses = [trainer.train_step(images, labels, [space.max_config(), space.min_config()], 0.05) for _ in range(2)]
    assert all(np.isfinite(losses)) and not np.allclose(before, trainer.net.blocks[2].project_conv.kernel.numpy())


def test_kd_phase_without_teacher_is_a_clear_error(tmp_path):
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    config = apply_overrides(cifar_preset(), {**TINY, "phases": TINY_PHASES[1:2], "max_steps_per_phase": 1})
    with pytest.raises(ConfigError, match="distills from a teacher, but there is none"):
        ProgressiveShrinkingTrainer(config, tmp_path / "run").run()


def _cli(*args):
    return [sys.executable, "-m", "ofa_tf.cli", *args]


def test_cli_train_bad_input_exits_2(tmp_path):
    from click.testing import CliRunner

    from ofa_tf.cli.main import main

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(cifar_preset().to_json())
    (tmp_path / "done" / "supernet").mkdir(parents=True)  # a finished run: its supernet is saved
    (tmp_path / "done" / "config.json").write_text(cifar_preset().to_json())
    (tmp_path / "done" / "supernet" / "supernet.json").write_text("{}")
    for args, message in (
        (["train", "--out", str(tmp_path / "full")], "exists and is not empty"),
        (["train", "--out", str(tmp_path / "a"), "--batch-size", "0"], "batch_size=0"),
        (["train", "--out", str(tmp_path / "b"), "--phases", "nope"], "unknown phases"),
        (["train", "--resume", str(tmp_path / "missing")], "is not a training run"),
        (["train", "--resume", str(tmp_path / "run"), "--batch-size", "8", "--max-steps", "3"],
         "--batch-size cannot change (only --max-steps, --checkpoint-every can)"),
        (["train", "--out", str(tmp_path / "f"), "--preset", "transfer"], "give --init SUPERNET_DIR"),
        (["train", "--out", str(tmp_path / "c"), "--config", str(tmp_path / "none.yaml")], "does not exist"),
        (["train", "--out", str(tmp_path / "d"), "--data", str(tmp_path / "nowhere")], "no such folder"),
        (["train", "--out", str(tmp_path / "e"), "--data", str(tmp_path / "full")], "no images found"),
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, (args, result.output)
    config_before = (tmp_path / "done" / "config.json").read_text()
    finished = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "done")])
    assert finished.exit_code == 0 and "nothing to resume" in finished.output
    assert (tmp_path / "done" / "config.json").read_text() == config_before  # not rewritten


@pytest.mark.slow
def test_a_finished_run_resumed_with_more_steps_continues_its_last_phase(tmp_path):
    from click.testing import CliRunner

    from ofa_tf.cli.main import main
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    run_dir = tmp_path / "run"
    config = apply_overrides(cifar_preset(), {**SHALLOW, "phases": SHALLOW["phases"][:1], "max_steps_per_phase": 2})
    ProgressiveShrinkingTrainer(config, run_dir).run()
    first = (run_dir / "supernet" / "supernet.json").stat().st_mtime_ns
    config_before = (run_dir / "config.json").read_text()
    refused = CliRunner().invoke(main, ["train", "--resume", str(run_dir), "--max-steps", "2"])
    assert refused.exit_code == 2 and "resume with --max-steps above 2" in refused.output, refused.output
    assert (run_dir / "config.json").read_text() == config_before  # a refused extension changes nothing
    extended = CliRunner().invoke(main, ["train", "--resume", str(run_dir), "--max-steps", "4"])
    assert extended.exit_code == 0, extended.output[-2000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "step"] == [1, 2, 3, 4]  # continued, not restarted
    assert [(r["from_step"], r["to_step"]) for r in records if r["event"] == "extend"] == [(2, 4)]
    assert json.loads((run_dir / "config.json").read_text())["max_steps_per_phase"] == 4
    assert (run_dir / "supernet" / "supernet.json").stat().st_mtime_ns > first  # saved again


@pytest.mark.slow
def test_killed_run_resumes_bitwise_equal_to_an_uninterrupted_one(tiny_run, tmp_path):
    from click.testing import CliRunner

    from ofa_tf import load_supernet
    from ofa_tf.cli.main import main

    run_dir, reference_dir = tmp_path / "run", tiny_run[0].run_dir  # the reference ran in process, uninterrupted
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(RESUMABLE))
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process = subprocess.Popen(_cli("train", "--out", str(run_dir), "--config", str(config)), **quiet)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 300
    killed_after = None
    while time.time() < deadline and process.poll() is None:
        if metrics.is_file():
            steps = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            steps = [s for s in steps if s["event"] == "step" and s["phase"] == "kernel"]
            if steps and steps[-1]["step"] >= 5:
                os.kill(process.pid, signal.SIGKILL)
                killed_after = steps[-1]["step"]
                break
        time.sleep(0.05)
    process.wait()
    assert killed_after is not None, "the run finished or stalled before it could be killed mid-phase"
    assert not (run_dir / "supernet").exists()
    # resumed in this process (the kill above is the real one); --max-steps may be given again on resume
    resumed = CliRunner().invoke(main, ["train", "--resume", str(run_dir), "--max-steps", "8"])
    assert resumed.exit_code == 0, resumed.output[-2000:]
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    steps = [r for r in records if r["event"] == "step"]
    assert [r["step"] for r in steps if r["phase"] == "teacher"] == list(range(1, 9))  # not rerun
    kernel = [r["step"] for r in steps if r["phase"] == "kernel"]
    restart = next(i for i in range(1, len(kernel)) if kernel[i] <= kernel[i - 1])
    # resumed from the last checkpoint (every 2 steps) before the kill, then ran to the end
    assert kernel[restart] - 1 in (2, 4, 6) and kernel[restart] - 1 >= killed_after - 2
    assert kernel[restart:] == list(range(kernel[restart], 9))
    phases = {r["phase"] for r in json.loads((run_dir / "phase_results.json").read_text())}
    assert phases == {"teacher", "kernel", "expand_1"}
    # --deterministic: the killed-and-resumed run ends with the uninterrupted run's weights, bit for bit
    ours, theirs = load_supernet(run_dir / "supernet"), load_supernet(reference_dir / "supernet")
    assert len(ours.weights) == len(theirs.weights)
    for a, b in zip(ours.weights, theirs.weights):
        assert np.array_equal(a.numpy(), b.numpy()), a.path
