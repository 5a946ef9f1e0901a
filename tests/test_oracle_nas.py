"""Encodings, the accuracy predictor import and the latency-table sum against the official code."""

import numpy as np
import official_oracle as oracle
import pytest
import torch
import yaml
from ofa.nas.accuracy_predictor.acc_predictor import AccuracyPredictor as OfficialPredictor
from ofa.nas.accuracy_predictor.arch_encoder import MobileNetArchEncoder
from ofa.nas.efficiency_predictor.latency_lookup_table import MBv3LatencyTable
from ofa.tutorial.accuracy_predictor import AccuracyPredictor as TutorialPredictor

from ofa_tf import ConfigError, SearchSpace
from ofa_tf.interop.official_nas import accuracy_predictor_from_state_dict, load_official_latency_tables
from ofa_tf.nas.arch_encoding import ArchEncoder
from ofa_tf.nas.latency_table import all_keys

RESOLUTIONS = (128, 160, 192, 224)


def _sample(space, n, seed, resolutions=RESOLUTIONS):
    rng = np.random.default_rng(seed)
    arch = space.sample_indices(rng, n)
    return arch.__class__(arch.kernel_index, arch.expand_index, arch.depth, rng.choice(resolutions, size=n))


def test_library_encoding_equals_official_encoder():
    space = SearchSpace()
    arch = _sample(space, 200, 0)
    ours = ArchEncoder(space, RESOLUTIONS).encode(arch)
    official = MobileNetArchEncoder(image_size_list=list(RESOLUTIONS))
    for row, config in zip(ours, space.from_indices(arch)):
        expected = official.arch2feature({**config.to_dict(), "image_size": config.resolution})
        assert np.array_equal(row, expected)


def test_tutorial_encoding_equals_official_spec2feats():
    space = SearchSpace()
    arch = _sample(space, 200, 1, resolutions=(160, 176, 192, 208, 224))
    ours = ArchEncoder(space, layout="tutorial").encode(arch)
    assert ours.shape == (200, 128)
    for row, config in zip(ours, space.from_indices(arch)):
        expected = TutorialPredictor.spec2feats(list(config.ks), list(config.e), list(config.d), config.resolution)
        assert np.array_equal(row, expected.numpy())


def test_tutorial_predictor_checkpoint_gives_official_predictions():
    torch.manual_seed(0)
    official = TutorialPredictor(pretrained=False, device="cpu")
    state = {k: v.numpy() for k, v in official.model.state_dict().items()}
    ours = accuracy_predictor_from_state_dict(state)
    space = SearchSpace()
    arch = _sample(space, 64, 2, resolutions=(160, 176, 192, 208, 224))
    population = [{**c.to_dict(), "r": [c.resolution]} for c in space.from_indices(arch)]
    expected = official.predict_accuracy(population).numpy()[:, 0]
    assert np.abs(ours.predict(arch) - expected).max() <= 1e-5


def test_library_predictor_checkpoint_gives_official_predictions():
    torch.manual_seed(1)
    encoder = MobileNetArchEncoder(image_size_list=list(RESOLUTIONS))
    official = OfficialPredictor(encoder, device="cpu")
    with torch.no_grad():
        official.base_acc.fill_(0.71)
    state = {k: v.detach().numpy() for k, v in official.state_dict().items()}
    ours = accuracy_predictor_from_state_dict(state)
    assert ours.encoder.resolutions == RESOLUTIONS
    space = SearchSpace()
    arch = _sample(space, 64, 3)
    configs = [{**c.to_dict(), "image_size": c.resolution} for c in space.from_indices(arch)]
    with torch.no_grad():
        expected = official.predict_acc(configs).numpy()
    assert np.abs(ours.predict(arch) - expected).max() <= 1e-5


def test_bad_predictor_state_is_rejected():
    with pytest.raises(ConfigError, match="not an OFA accuracy predictor"):
        accuracy_predictor_from_state_dict({"fc.weight": np.zeros((1, 2))})


@pytest.mark.parametrize("width", [1.0, 1.2])
def test_latency_table_sum_equals_official(tmp_path, width):
    space = SearchSpace(width_mult=width)
    resolutions = (160, 192, 224)
    rng = np.random.default_rng(4)
    keys = all_keys(space, resolutions)
    entries = {key: {"mean": float(rng.uniform(0.05, 3.0)), "std": 0.01, "count": 10} for key in keys}
    paths = []
    for r in resolutions:  # one file per resolution, as upstream publishes them
        path = tmp_path / f"{r}_lookup_table.yaml"
        path.write_text(yaml.safe_dump(entries))
        paths.append(path)
    ours = load_official_latency_tables(space, *paths)
    official_table = MBv3LatencyTable.__new__(MBv3LatencyTable)
    official_table.lut = entries
    official_net = oracle.official_supernet(width, seed=5)
    arch = _sample(space, 30, 6, resolutions=resolutions)
    predicted = ours.latency(arch)
    for value, config in zip(predicted, space.from_indices(arch)):
        official_net.set_active_subnet(ks=list(config.ks), e=list(config.e), d=list(config.d))
        subnet_config = official_net.get_active_subnet(preserve_weight=False).config
        expected = official_table.predict_network_latency_given_config(subnet_config, config.resolution)
        assert value == pytest.approx(expected, rel=1e-12)


def test_latency_table_missing_entry_is_a_clear_error(tmp_path):
    space = SearchSpace()
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump({k: {"mean": 1.0} for k in all_keys(space, [160])}))
    table = load_official_latency_tables(space, path)
    assert table.covers(160) and not table.covers(224)
    with pytest.raises(ConfigError, match="latency table has no entry Conv-input:224x224x3-output:112x112x16: it was built for another"):
        table.latency(space.sample_indices(np.random.default_rng(0), 2, with_resolution=False), resolution=224)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2]\n")
    with pytest.raises(ConfigError, match="not a latency table"):
        load_official_latency_tables(space, bad)
