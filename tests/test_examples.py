"""Every `ofa-tf` command of the README's and docs' bash examples runs, on a tiny session folder.

The session folder stands in for what the README's commands expect to exist (the
PLACEHOLDERS table): `runs/cifar` is a tiny main-job run (width 0.25, 32 px, a
predictor, subnets for 4M/6M/8M-MACs and 0.6ms@host, a host latency table, the int8
export), `my_photos` a 3-class image folder, `my_model.keras` a user's Keras MobileNetV2 for it,
`subnet.keras` a specialized subnet and
`runs/quick` a run killed in its second phase, `subnet.tflite` the int8 export. Each block runs in its own copy of the
folder, its commands in order, each after its own `--out` is removed (so "create"
commands create) and, for `--resume RUN`, with RUN replaced by the killed run (the
README's resume examples continue a killed run). FAST lists the options appended to
each command (the last value of an option wins) so that it runs in seconds on the
tiny folder; EXCLUDED the commands that cannot run here and why.
"""

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import color_folder
from ofa_tf.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# what a README path means in the session folder (see the module docstring)
PLACEHOLDERS = {
    "[--finetune-epochs 2]": "--finetune-epochs 1",  # an optional flag, run with it
    "150M-MACs": "0.9M-MACs",  # a budget of a 224 px MobileNetV2, for the session's 32 px one (0.64M..1.19M MACs)
}
SESSION_PATHS = ("runs/cifar", "runs/quick", "my_photos", "subnet.keras", "subnet.tflite", "my_model.keras")

# appended to each command (by its first words) so that it runs in seconds on the tiny folder
FAST = {
    "train": ["--width-mult", "0.25", "--resolutions", "32", "--max-steps", "1", "--batch-size", "8"],
    "train --resume": ["--max-steps", "1"],
    "train --init": ["--resolutions", "32", "--max-steps", "1", "--batch-size", "8"],  # the width is the pretrained card's
    "predictor build": ["--n-subnets", "10", "--bn-images", "16"],
    "predictor train": ["--epochs", "2"],
    "specialize": ["--generations", "2", "--bn-images", "16"],
    "finetune": ["--epochs", "1", "--batch-size", "8"],
    # a tiny model trained a few steps: int8 agreement with the float model is not meaningful
    "export": ["--validate-images", "20", "--calibration-samples", "8", "--min-agreement", "0"],
    "export --qat-epochs": ["--qat-max-steps", "1", "--qat-batch-size", "4"],
    "export --saved-model": [],
    # the tiny session subnet fine-tuned 3 steps has activations up to ~1e7 (dead BN channels of a 1-step
    # supernet meet new images): XNNPACK refuses int8 at such ranges, so its export runs with float weights
    "export runs/mine_6M": ["--quantize", "dynamic", "--validate-images", "20", "--min-agreement", "0"],
    "bench model": ["--num-runs", "2", "--warmup-runs", "1"],
    "bench lut": ["--num-runs", "2", "--warmup-runs", "1", "--depthwise-forms", "plain"],
    "bench validate": ["--n", "3", "--num-runs", "2", "--warmup-runs", "1"],
}

# a command containing one of these cannot run here
EXCLUDED = {
    "pip install": "installs the project (CI runs it on a fresh clone)",
    "python -m pytest": "the test suite itself",
    "--device adb": "needs a phone",
    "bench devices": "lists the phones adb sees: needs adb",
    "--preset paper": "trains on ImageNet",
    "/data/imagenet": "needs ImageNet",
    "convert-official": "reads the official checkpoints a user downloads (tests/test_cli.py converts a stand-in)",
    "supernets/w1.2": "an official supernet and predictor a user downloads",
}


def bash_examples(documents: list[Path] = DOCUMENTS) -> list[tuple[str, list[str]]]:
    """(where, commands) of each bash block: continuation lines joined, `&&` chains split."""
    examples = []
    for document in documents:
        text = document.read_text()
        for match in re.finditer(r"^( *)```bash\n(.*?)^\1```", text, flags=re.S | re.M):
            where = f"{document.name}:{text[:match.start()].count(chr(10)) + 1}"
            joined = match.group(2).replace("\\\n", " ")
            commands = [part.strip() for line in joined.splitlines() for part in line.split("&&")]
            examples.append((where, [c for c in commands if c and not c.startswith("#")]))
    return examples


def excluded_reason(command: str) -> str | None:
    return next((reason for pattern, reason in EXCLUDED.items() if pattern in command), None)


def _fast_options(args: list[str]) -> list[str]:
    """FAST's options for a command: by its first two words (a subcommand, or `export SUBNET`), else by a
    flag it has, else by its first word."""
    keys = [" ".join(args[:2]), *(f"{args[0]} {flag}" for flag in ("--resume", "--saved-model") if flag in args)]
    for key in keys:
        if key in FAST:
            return FAST[key]
    return FAST.get(args[0], []) + (FAST["export --qat-epochs"] if "--qat-epochs" in args else [])


def _arguments(command: str) -> list[str]:
    for text, replacement in PLACEHOLDERS.items():
        command = command.replace(text, replacement)
    words = shlex.split(command, comments=True)
    assert words[0] == "ofa-tf", command
    return words[1:]


def _value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def _invoke(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def session(tmp_path_factory, monkeypatch_module):
    """The folder the README's commands expect (see the module docstring)."""
    root = tmp_path_factory.mktemp("session")
    monkeypatch_module.chdir(root)
    color_folder(root / "my_photos")
    fast = FAST["train"]
    steps = [
        ["train", "--preset", "cifar", "--out", "runs/cifar", *fast],
        ["predictor", "build", "--supernet", "runs/cifar", *FAST["predictor build"]],
        ["predictor", "train", "--supernet", "runs/cifar", *FAST["predictor train"]],
        ["specialize", "--supernet", "runs/cifar", "--budget", "4M-MACs,6M-MACs,8M-MACs", "--out", "runs/cifar/specialized",
         *FAST["specialize"]],
        ["bench", "lut", "--supernet", "runs/cifar", "--device", "host", *FAST["bench lut"]],
        ["specialize", "--supernet", "runs/cifar", "--budget", "0.6ms@host", "--out", "runs/cifar/specialized",
         *FAST["specialize"]],
        ["export", "runs/cifar/specialized/8M-MACs", "--quantize", "int8", "--out", "runs/cifar/subnet_int8.tflite",
         *FAST["export"]],
    ]
    for args in steps:
        result = _invoke(args)
        assert result.exit_code == 0, (args, result.output)
    shutil.copy(root / "runs/cifar/specialized/8M-MACs/subnet.keras", root / "subnet.keras")
    _users_model(root / "my_model.keras")
    shutil.copy(root / "runs/cifar/subnet_int8.tflite", root / "subnet.tflite")
    _killed_run(root / "runs" / "quick", monkeypatch_module)
    return root


def _users_model(path: Path) -> None:
    """A user's Keras network for my_photos' 3 classes: a MobileNetV2-0.35 at 32 px (random weights)."""
    import keras

    keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3), classes=3).save(path)


def _killed_run(out: Path, monkeypatch) -> None:
    """A tiny run stopped at the evaluation of its second phase (the last checkpoint is in that phase)."""
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    evaluate, calls = ProgressiveShrinkingTrainer.evaluate, []

    def killed_at_second(self, phase):
        calls.append(phase.name)
        if len(calls) == 2:
            raise _Killed
        return evaluate(self, phase)

    with monkeypatch.context() as patch:
        patch.setattr(ProgressiveShrinkingTrainer, "evaluate", killed_at_second)
        result = _invoke(["train", "--preset", "cifar", "--out", out, *FAST["train"], "--checkpoint-every", "1"])
    assert isinstance(result.exception, _Killed) and not (out / "supernet").exists()


class _Killed(Exception):
    """Stands for the process being killed."""


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_exclusion_and_placeholder_is_used():
    commands = [c for _, block in bash_examples() for c in block]
    assert len(commands) >= 30
    for pattern in [*EXCLUDED, *PLACEHOLDERS, *SESSION_PATHS]:
        assert any(pattern in c for c in commands), f"{pattern!r} is in no example: remove it from the table"
    runnable = [c for c in commands if excluded_reason(c) is None]
    assert all(c.startswith("ofa-tf ") for c in runnable), [c for c in runnable if not c.startswith("ofa-tf ")]
    assert len(runnable) >= 20


def run_block(where: str, commands: list[str], session: Path) -> None:
    """Runs a block's commands in order in the current folder (a copy of `session`); fails naming the first
    command that fails."""
    for command in commands:
        args = _arguments(command)
        out = _value(args, "--out")
        if out and Path(out).exists():
            shutil.rmtree(out) if Path(out).is_dir() else Path(out).unlink()
        resumed = _value(args, "--resume")
        if resumed:
            shutil.rmtree(resumed, ignore_errors=True)
            shutil.copytree(session / "runs" / "quick", resumed)
        result = _invoke([*args, *_fast_options(args)])
        assert result.exit_code == 0, f"{where}: {command}\n{result.output[-3000:]}"


def test_blocks_are_read_as_a_shell_reads_them(tmp_path):
    document = tmp_path / "doc.md"
    document.write_text(
        "text\n```bash\n# a comment\nofa-tf a --x 1 \\\n  --y 2   # why\nofa-tf b && ofa-tf c\n```\n"
        "  ```bash\n  ofa-tf d\n  ```\n```python\nofa-tf e\n```\n"
    )
    assert bash_examples([document]) == [("doc.md:2", ["ofa-tf a --x 1    --y 2   # why", "ofa-tf b", "ofa-tf c"]),
                               ("doc.md:8", ["ofa-tf d"])]
    assert _arguments("ofa-tf a --x 1    --y 2   # why") == ["a", "--x", "1", "--y", "2"]


def test_a_broken_example_fails(tmp_path, monkeypatch):
    """The harness itself: a command with an option that is gone, or a path it does not make, fails the test."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="No such option '--population-size'"):
        run_block("doc.md:1", ["ofa-tf specialize --supernet runs/cifar --budget 4M-MACs --population-size 8"], tmp_path)
    with pytest.raises(AssertionError, match="doc.md:1: ofa-tf export runs/missing"):
        run_block("doc.md:1", ["ofa-tf export runs/missing --out subnet.tflite"], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("where, commands", bash_examples(), ids=[where for where, _ in bash_examples()])
def test_bash_example_runs_as_written(where, commands, session, tmp_path, monkeypatch):
    runnable = [c for c in commands if excluded_reason(c) is None]
    if not runnable:
        pytest.skip("; ".join(sorted({excluded_reason(c) for c in commands})))
    shutil.copytree(session, tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    run_block(where, runnable, session)
