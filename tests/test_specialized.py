"""Official specialized networks (net.config + weights) as stock Keras models, the official package as oracle.

Each family's official supernet samples a subnet; `get_active_subnet()` gives
the `.config` and weights the model zoo ships (randomized here, BN statistics
included); `ofa-tf convert-official --specialized` must give the same logits.
"""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import official_oracle as oracle
from ofa_tf._backend import keras
from ofa_tf.cli.main import main
from ofa_tf.supernet.counting import count_model_macs, count_model_params
from ofa_tf.errors import ConfigError
from ofa_tf.export.rewrite import rebuild
from ofa_tf.interop.official import infer_supernet_args, official_family

# (family, official supernet class, resolution: 100 gives odd feature maps (25, 13, 7), ResNets' ceil-mode pooling included)
FAMILIES = [("mbv3", "OFAMobileNetV3", 96), ("proxyless", "OFAProxylessNASNets", 100), ("resnet50", "OFAResNets", 100)]


def _official_specialized(supernet_class: str, tmp_path, seed: int):
    """A random official subnet saved as the zoo ships one: (supernet, subnet, net.config path, weights path)."""
    supernet = oracle.family_supernet(supernet_class, n_classes=10, dropout_rate=0.1, seed=seed)
    supernet.sample_active_subnet()
    subnet = oracle.specialized_subnet(supernet, seed)
    config_path, weights_path = tmp_path / "net.config", tmp_path / "init"
    config_path.write_text(json.dumps(subnet.config))
    torch.save({"state_dict": subnet.state_dict()}, weights_path)
    return supernet, subnet, config_path, weights_path


def _convert(*args):
    return CliRunner().invoke(main, ["convert-official", *[str(a) for a in args]])


@pytest.mark.parametrize("family, supernet_class, resolution", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_specialized_network_gives_the_official_logits(family, supernet_class, resolution, tmp_path):
    supernet, subnet, config_path, weights_path = _official_specialized(supernet_class, tmp_path, seed=len(family))
    # the family shows in the tensor names; a checkpoint ofa-tf cannot load as a supernet says what to do instead
    assert official_family(supernet.state_dict()) == supernet_class
    assert official_family(subnet.state_dict()) == "specialized"
    expected_family = {"OFAMobileNetV3": "mbv3", "OFAProxylessNASNets": "proxyless", "OFAResNets": "resnet50"}
    assert infer_supernet_args(supernet.state_dict())["family"] == expected_family[supernet_class]
    with pytest.raises(ConfigError, match="specialized network, not a supernet.*--specialized"):
        infer_supernet_args(subnet.state_dict())
    out = tmp_path / f"{family}.keras"
    (tmp_path / "run.config").write_text(json.dumps({"image_size": [resolution - 32, resolution]}))  # as the zoo's
    result = _convert("--specialized", config_path, weights_path, out)
    assert result.exit_code == 0, result.output
    model = keras.models.load_model(out)  # stock layers only: no custom objects
    sidecar = json.loads((tmp_path / f"{family}.net.json").read_text())
    assert sidecar["net_config"] == json.loads(config_path.read_text()) and sidecar["resolution"] == resolution
    assert {type(layer).__module__.split(".")[0] for layer in model.layers} == {"keras"}

    images = np.random.default_rng(0).normal(size=(2, resolution, resolution, 3)).astype(np.float32)
    with torch.no_grad():
        expected = subnet(torch.from_numpy(np.transpose(images, (0, 3, 1, 2)).copy())).numpy()
    got = model(images, training=False).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), np.abs(got - expected).max()
    # the official counter's MACs and parameters
    assert count_model_macs(model) == oracle.exact_flops(subnet, resolution)
    assert count_model_params(model) == sum(p.numel() for p in subnet.parameters())
    # ready for `ofa-tf export`: its int8-friendly graph (pooling layers included) computes the same
    friendly = rebuild(model, int8_friendly=True, fold_scales=True)
    assert np.abs(friendly(images).numpy() - got).max() <= 1e-4 * np.abs(expected).max()


def test_weights_of_another_network_are_refused_in_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, config_path, _ = _official_specialized(FAMILIES[0][1], tmp_path / "a", seed=1)
    *_, other_weights = _official_specialized(FAMILIES[2][1], tmp_path / "b", seed=2)
    result = _convert("--specialized", config_path, other_weights, tmp_path / "x.keras")
    assert result.exit_code == 2 and "do the weights belong to this net.config?" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.keras").exists()

    (tmp_path / "bad.config").write_text(json.dumps({"name": "VGG16"}))
    result = _convert("--specialized", tmp_path / "bad.config", other_weights, tmp_path / "x.keras")
    assert result.exit_code == 2 and "expected one of MobileNetV3, ProxylessNASNets, ResNets" in result.output
    result = _convert("--specialized", tmp_path / "missing.config", other_weights, tmp_path / "x.keras")
    assert result.exit_code == 2 and "does not exist" in result.output
