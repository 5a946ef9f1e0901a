"""A card or table that a command reads back, damaged (cut short, edited by hand), ends the command
with one line naming the file and the step that writes it again: no traceback, exit code 2."""

import json

import pytest
from click.testing import CliRunner

from conftest import build_tiny
from ofa_tf.cli.main import main

DAMAGED = '{"config": {"phases": ['  # a file cut short


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A supernet folder with a predictor, a specialize folder and a latency table, all intact."""
    from ofa_tf.supernet.extract import extract_subnet
    from ofa_tf.supernet.storage import save_supernet

    root = tmp_path_factory.mktemp("intact")
    net = build_tiny(seed=1)
    save_supernet(net, root / "supernet")
    predictor = root / "supernet" / "predictor"
    predictor.mkdir()
    (predictor / "accuracy_dataset.json").write_text(json.dumps({"config": {"resolutions": [32]}, "records": []}))
    (predictor / "accuracy_predictor.json").write_text("{}")
    (predictor / "accuracy_predictor.keras").write_bytes(b"")
    specialized = root / "specialized"
    specialized.mkdir()
    extract_subnet(net, net.space.min_config(32)).save(specialized / "subnet.keras")
    (specialized / "subnet.json").write_text("{}")
    run = root / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (root / "luts").mkdir()
    (root / "luts" / "host.yaml").write_text("{}")  # a table begun, and its card
    (root / "luts" / "host.json").write_text("{}")
    return root


CASES = [
    # (the file to damage, relative to the folders; the command reading it back)
    ("run/config.json", ["train", "--resume", "{root}/run"]),
    ("supernet/supernet.json", ["predictor", "build", "--supernet", "{root}/supernet", "--n-subnets", "10"]),
    ("supernet/supernet.json", ["train", "--init", "{root}/supernet", "--out", "{root}/new_run"]),
    ("supernet/predictor/accuracy_dataset.json", ["predictor", "train", "--supernet", "{root}/supernet"]),
    ("supernet/predictor/accuracy_predictor.json",
     ["specialize", "--supernet", "{root}/supernet", "--budget", "5M-MACs", "--out", "{root}/out"]),
    ("specialized/subnet.json", ["export", "{root}/specialized", "--out", "{root}/subnet.tflite"]),
    ("specialized/subnet.json", ["finetune", "{root}/specialized", "--data", "bundled", "--out", "{root}/tuned"]),
    ("luts/host.json", ["bench", "lut", "--supernet", "{root}/supernet", "--device", "host", "--out", "{root}/luts/host.yaml"]),
]


@pytest.mark.parametrize("damaged, command", CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_a_damaged_file_is_named_in_one_line(folders, damaged, command, tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(folders, root)
    (root / damaged).write_text(DAMAGED)
    result = CliRunner().invoke(main, [part.replace("{root}", str(root)) for part in command])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    errors = [line for line in lines if line.startswith("Error:")]  # a progress bar may come before it
    assert "Traceback" not in result.output and errors == [lines[-1]], result.output
    assert lines[-1].startswith(f"Error: {root / damaged} is damaged (not valid JSON"), result.output
