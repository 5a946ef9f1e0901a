"""Predictor build/train and `ofa-tf specialize` on a tiny supernet (w0.25, 32 px, bundled images)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from ofa_tf import count_model_macs
from ofa_tf.cli.main import main
from ofa_tf.supernet.extract import extract_subnet
from ofa_tf.data.sources import open_source
from ofa_tf.nas.accuracy_dataset import AccuracyDatasetConfig, build_accuracy_dataset
from ofa_tf.nas.predictor_training import kendall_tau
from ofa_tf.nas.report import pareto_front
from ofa_tf.supernet.storage import save_supernet
from ofa_tf.families.mbconv.space import SubnetConfig
from ofa_tf.training.finetune import FinetuneConfig, finetune

from conftest import build_tiny


def test_kendall_tau_b_with_ties():
    # scipy.stats.kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) = -0.47140452079103173
    assert kendall_tau(np.array([12, 2, 1, 12, 2]), np.array([1, 4, 7, 1, 0])) == pytest.approx(-0.47140452079103173)
    assert kendall_tau(np.arange(6), np.arange(6) ** 2) == pytest.approx(1.0)


def test_pareto_front_keeps_only_undominated_points():
    cost = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    accuracy = np.array([0.5, 0.4, 0.7, 0.6, 0.8])
    assert pareto_front(cost, accuracy).tolist() == [0, 2, 4]


def test_accuracy_dataset_resumes_and_grows(tmp_path):
    net = build_tiny()
    calls = []

    def measure(subnet: SubnetConfig, resolution: int) -> float:
        calls.append((subnet, resolution))
        return float(sum(subnet.ks) + resolution)

    path = tmp_path / "dataset.json"
    config = AccuracyDatasetConfig(n_subnets=4, resolutions=(24, 32), seed=3, bn_recalibration_images=8)
    first = build_accuracy_dataset(net.space, measure, config, path)
    assert len(first) == 8 and len(calls) == 8
    grown = build_accuracy_dataset(net.space, measure, AccuracyDatasetConfig(6, (24, 32), 3, 8), path)
    assert len(grown) == 12 and len(calls) == 12  # only the 2 new subnets were measured
    assert grown[:8] == first
    with pytest.raises(ValueError, match="resume with the same options"):
        build_accuracy_dataset(net.space, measure, AccuracyDatasetConfig(6, (24, 32), 4, 8), path)


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("supernet")
    save_supernet(build_tiny(seed=1), directory)
    return directory


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _fake_latency_table(supernet_dir, tmp_path):
    """A latency table in the official key format with random entries; its midpoint budget (ms)."""
    import yaml

    from ofa_tf.nas.latency_table import LatencyTable, all_keys
    from ofa_tf.supernet.storage import load_supernet

    space = load_supernet(supernet_dir).space
    rng = np.random.default_rng(0)
    entries = {key: {"mean": float(rng.uniform(0.1, 1.0)), "std": 0.0, "count": 1} for key in all_keys(space, [24, 32])}
    lut = tmp_path / "fakephone.yaml"
    lut.write_text(yaml.safe_dump(entries))
    table = LatencyTable(space, entries)
    low = table.latency(space.to_indices([space.min_config(24)]))[0]
    high = table.latency(space.to_indices([space.max_config(32)]))[0]
    return table, lut, round((low + high) / 2, 2)


@pytest.mark.slow
def test_predictor_build_train_and_specialize(supernet_dir, tmp_path):
    common = ["--supernet", supernet_dir]
    built = _invoke("predictor", "build", *common, "--n-subnets", 10, "--resolutions", "24,32", "--holdout-images", 100,
                    "--bn-images", 64)
    assert built.exit_code == 0, built.output
    dataset = json.loads((supernet_dir / "predictor" / "accuracy_dataset.json").read_text())
    assert len(dataset["records"]) == 20 and all(0 <= r["top1"] <= 100 for r in dataset["records"])

    trained = _invoke("predictor", "train", *common, "--epochs", 30)
    assert trained.exit_code == 0, trained.output
    card = json.loads((supernet_dir / "predictor" / "accuracy_predictor.json").read_text())
    assert -1 <= card["metrics"]["kendall_tau"] <= 1 and card["metrics"]["n_test_records"] > 0
    assert card["search_space"]["resolutions"] == sorted(card["resolutions"])  # the run's, not 128..224

    table, lut, limit = _fake_latency_table(supernet_dir, tmp_path)
    out = tmp_path / "out"
    result = _invoke("specialize", *common, "--budget", f"1M-MACs,900M-MACs,{limit}ms@fakephone", "--out", out,
                     "--generations", 5, "--bn-images", 64, "--lut", lut, "--finalists", 3)
    assert result.exit_code == 0, result.output
    assert "above the largest subnet" in result.output and "finalists on the hold-out split" in result.output
    shipped = []
    for folder in ("1M-MACs", "900M-MACs"):  # the best measured finalist ships; a larger budget measures the smaller's winner too
        summary = json.loads((out / folder / "subnet.json").read_text())
        records = summary["finalists"]
        assert 1 <= len(records) <= 3 and all(r["cost"] <= float(folder[:-6].rstrip("M")) * 1e6 for r in records)
        assert summary["config"] == max(records, key=lambda r: r["holdout_top1"])["config"]
        shipped.append(summary["config"])
    assert shipped[0] in [r["config"] for r in records]
    latency = json.loads((out / f"{limit}ms_fakephone" / "subnet.json").read_text())
    chosen = table.space.to_indices([SubnetConfig.from_dict(latency["config"])])
    assert latency["latency_ms"] == pytest.approx(table.latency(chosen)[0]) and latency["latency_ms"] <= limit
    for budget, limit in (("1M-MACs", 1e6), ("900M-MACs", 900e6)):
        summary = json.loads((out / budget / "subnet.json").read_text())
        assert summary["macs"] <= limit
        model = keras.models.load_model(out / budget / "subnet.keras")
        assert count_model_macs(model) == summary["macs"]  # the saved model is the chosen subnet
        assert (out / budget / "pareto.png").stat().st_size > 1000
        assert "measured top-1" in (out / budget / "report.md").read_text()
    tuned = _invoke("specialize", *common, "--budget", "1M-MACs", "--out", tmp_path / "tuned", "--generations", 1,
                    "--bn-images", 64, "--finetune-epochs", 1)
    assert tuned.exit_code == 0, tuned.output
    summary = json.loads((tmp_path / "tuned" / "1M-MACs" / "subnet.json").read_text())
    assert f"{summary['finetuned_top1']:.2f}% after 1 fine-tuning epochs" in tuned.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0.1M-MACs"], "below the smallest subnet"),
        (["--budget", "600 MACs"], "not understood"),
        (["--budget", "25ms@nophone"], "no latency table 'nophone'"),
        (["--budget", "1M-MACs", "--resolutions", "64"], "the predictor knows only"),
    ],
)
@pytest.mark.slow  # uses the predictor the chain above built
def test_specialize_bad_input_is_one_line(supernet_dir, tmp_path, args, message):
    if not (supernet_dir / "predictor" / "accuracy_predictor.keras").exists():
        pytest.skip("needs the predictor of test_predictor_build_train_and_specialize")
    result = _invoke("specialize", "--supernet", supernet_dir, "--out", tmp_path / "x", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_specialize_without_predictor_says_how_to_make_one(tmp_path):
    save_supernet(build_tiny(), tmp_path / "bare")
    result = _invoke("specialize", "--supernet", tmp_path / "bare", "--budget", "1M-MACs", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "ofa-tf predictor build" in result.output


def test_supernet_of_other_classes_needs_its_own_data(tmp_path):
    save_supernet(build_tiny(n_classes=12), tmp_path / "bare")  # e.g. a converted 1000-class official supernet
    result = _invoke("predictor", "build", "--supernet", tmp_path / "bare", "--n-subnets", 1)
    assert result.exit_code == 2 and "has 12 classes but the data (bundled) has 10" in result.output, result.output
    assert f"ofa-tf train --init {tmp_path / 'bare'} --data bundled --out RUN" in result.output
    assert "--data" in result.output and len(result.output.strip().splitlines()) == 1


def test_specialize_with_stored_statistics_and_no_data_measures_nothing(tmp_path):
    from ofa_tf.nas.accuracy_dataset import DATASET_FILE

    net = build_tiny(seed=2, n_classes=12)  # like a converted official supernet: no data of its classes is known
    bare = tmp_path / "bare"
    save_supernet(net, bare)
    config = AccuracyDatasetConfig(n_subnets=12, resolutions=(32,), seed=0, bn_recalibration_images=8)
    build_accuracy_dataset(net.space, lambda subnet, r: float(sum(subnet.e)), config, bare / "predictor" / DATASET_FILE)
    assert _invoke("predictor", "train", "--supernet", bare, "--epochs", 2).exit_code == 0
    common = ["specialize", "--supernet", bare, "--budget", "900M-MACs", "--generations", 2]
    refused = _invoke(*common, "--out", tmp_path / "a")
    assert refused.exit_code == 2 and "has 12 classes but the data (bundled) has 10" in refused.output, refused.output
    result = _invoke(*common, "--out", tmp_path / "b", "--no-recalibrate")
    assert result.exit_code == 0, result.output
    assert "not measured (no data: give --data)" in result.output
    summary = json.loads((tmp_path / "b" / "900M-MACs" / "subnet.json").read_text())
    assert summary["measured_top1"] is None and summary["bn_statistics"] == "stored (supernet)"
    assert "not measured" in (tmp_path / "b" / "900M-MACs" / "report.md").read_text()
    chosen = SubnetConfig.from_dict(summary["config"])
    model = keras.models.load_model(tmp_path / "b" / "900M-MACs" / "subnet.keras")
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    expected = extract_subnet(net, chosen)(images)
    assert np.abs(model(images).numpy() - np.asarray(expected)).max() <= 1e-4  # the supernet's own statistics


def test_holdout_split_is_disjoint_and_fixed():
    source = open_source(None)
    rest, held = source.split_holdout(100, seed=5)
    _, held_again = source.split_holdout(100, seed=5)
    held_images = np.stack([image.numpy() for image, _ in held])
    assert rest.n_train == source.n_train - 100 and len(held_images) == 100
    assert np.array_equal(held_images, np.stack([image.numpy() for image, _ in held_again]))
    train_keys = {image.tobytes() for image in rest.x_train}
    assert not any(image.tobytes() in train_keys for image in held_images)


def test_finetune_with_distillation_updates_the_subnet():
    net = build_tiny(seed=2)
    subnet = extract_subnet(net, net.space.min_config(32))
    teacher = extract_subnet(net, net.space.max_config(32))
    source = open_source(None)
    examples = tf.data.Dataset.from_tensor_slices((source.x_train[:32], source.y_train[:32].astype(np.int64)))
    before = [w.copy() for w in subnet.get_weights()]
    steps = finetune(subnet, teacher, examples, 32, FinetuneConfig(epochs=2, batch_size=16))
    after = subnet.get_weights()
    assert steps == 4
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


@pytest.mark.slow
def test_growing_a_predictor_build_needs_only_n_subnets(tmp_path):
    save_supernet(build_tiny(seed=3), tmp_path / "bare")
    common = ["predictor", "build", "--supernet", tmp_path / "bare", "--resolutions", "24", "--holdout-images", 40]
    assert _invoke(*common, "--n-subnets", 1, "--bn-images", 8).exit_code == 0
    grown = _invoke(*common, "--n-subnets", 2)  # --bn-images 8 is the saved build's
    assert grown.exit_code == 0, grown.output
    dataset = json.loads((tmp_path / "bare" / "predictor" / "accuracy_dataset.json").read_text())
    assert len(dataset["records"]) == 2 and dataset["config"]["bn_recalibration_images"] == 8
    changed = _invoke(*common, "--n-subnets", 2, "--bn-images", 16)
    assert changed.exit_code == 2 and "resume with the same options" in changed.output
