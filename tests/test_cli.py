"""The ofa-tf command line: examples work, bad input gives one line and exit code 2."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from ofa_tf.cli.main import main


def run(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_info_prints_the_search_space():
    code, out = run("info", "--width-mult", "1.2", "--resolution", "224")
    assert code == 0
    assert "843.1" in out and "193.1" in out and "2.176e+19" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (("info", "--resolution", "4"), "--resolution 4 is too small"),
        (("info", "--width-mult", "0"), "width_mult=0.0: must be > 0"),
        (("convert-official", "/nonexistent/ckpt.pth", "out"), "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    code, out = run(*args)
    assert code == 2
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out


def test_installed_command_has_examples_in_help():
    out = subprocess.run([sys.executable, "-m", "ofa_tf.cli", "--help"], capture_output=True, text=True, check=True)
    assert "Example" in out.stdout and "convert-official" in out.stdout


def test_convert_official_round_trip(tmp_path):
    import official_oracle as oracle
    import torch

    from ofa_tf import load_supernet

    official = oracle.official_supernet(1.0, n_classes=10, seed=9)
    checkpoint = tmp_path / "ofa_mbv3_w1.0.pth"
    torch.save({"state_dict": official.state_dict()}, checkpoint)
    code, out = run("convert-official", str(checkpoint), str(tmp_path / "supernet"))
    assert code == 0 and "w1.0, 10 classes" in out
    net = load_supernet(tmp_path / "supernet")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 128, 128, 3)).astype(np.float32)
    config = net.space.sample(rng)
    ours = net(images, training=False, arch=net.arch_tensors(config)).numpy()
    theirs = oracle.official_logits(official, config.to_dict(), images)
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    code, out = run("convert-official", str(bad), str(tmp_path / "out"))
    assert code == 2 and "cannot read" in out and len(out.strip().splitlines()) == 1


def test_a_bug_keeps_its_traceback_and_debug_shows_input_errors(monkeypatch):
    import ofa_tf

    # An input error is one line; with --debug its traceback comes first, and the exit code stays 2.
    result = CliRunner().invoke(main, ["--debug", "info", "--resolution", "4"])
    assert result.exit_code == 2 and result.output.startswith("Traceback (most recent call last)")
    assert "ConfigError" in result.output and result.output.strip().splitlines()[-1].startswith("Error: ")

    # A ValueError from inside TensorFlow or numpy is a bug, not an input error: never a one-liner.
    def broken(*args, **kwargs):
        raise ValueError("shape mismatch inside a library")

    monkeypatch.setattr("ofa_tf.supernet.counting.count_costs", broken)  # what `info` counts with
    result = CliRunner().invoke(main, ["info"])
    assert isinstance(result.exception, ValueError) and result.exit_code == 1
    assert "Error: shape mismatch" not in result.output
