"""The official `ofa` package (PyTorch) as a test oracle.

`ofa` imports torchvision for its data loaders and gdown for its model zoo
downloads only; PyPI's torchvision does not load beside torch 2.13.0 here.
Tiny stand-in modules are installed when the real ones are missing (the
network, predictor and latency-table code never calls them).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch


def _install_stand_ins() -> None:
    try:
        import gdown  # noqa: F401
    except ImportError:
        sys.modules["gdown"] = types.ModuleType("gdown")
    try:
        import torchvision  # noqa: F401

        return
    except Exception:
        pass
    for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[name]
    package = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    for cls in ("RandomResizedCrop", "RandomCrop", "Compose", "ToTensor", "Normalize", "Resize", "CenterCrop"):
        setattr(transforms, cls, type(cls, (), {}))
    functional = types.ModuleType("torchvision.transforms.functional")
    datasets = types.ModuleType("torchvision.datasets")
    datasets.ImageFolder = type("ImageFolder", (), {})
    transforms.functional = functional
    package.transforms, package.datasets = transforms, datasets
    sys.modules.update(
        {
            "torchvision": package,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
            "torchvision.datasets": datasets,
        }
    )


_install_stand_ins()
import ofa.imagenet_classification.elastic_nn.networks as ofa_networks  # noqa: E402
from ofa.imagenet_classification.elastic_nn.utils import set_running_statistics  # noqa: E402
from ofa.utils.pytorch_utils import count_net_flops, count_parameters  # noqa: E402


def randomize(net, seed: int = 0) -> None:
    """Gives every parameter and BN buffer of an official network random values of a realistic scale."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            shape = tensor.shape
            if name.endswith("running_var"):
                value = torch.rand(shape, generator=generator) * 1.5 + 0.5
            elif name.endswith(("running_mean", "bias")):
                value = torch.randn(shape, generator=generator) * 0.2
            elif name.endswith("_matrix"):
                value = torch.eye(shape[0]) + torch.randn(shape, generator=generator) * 0.1
            elif (".point_linear.bn." in name or ".conv3.bn." in name) and name.endswith("weight"):
                # small residual branches keep the deep max net well conditioned in float32
                value = torch.rand(shape, generator=generator) * 0.3 + 0.1
            elif ".bn." in name and name.endswith("weight"):
                value = torch.rand(shape, generator=generator) + 0.5
            else:
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
                value = torch.randn(shape, generator=generator) * np.sqrt(2.0 / max(fan_in, 1))
            tensor.copy_(value)


def official_supernet(width_mult: float, n_classes: int = 1000, seed: int = 0):
    """The official supernet with every parameter and BN buffer randomized."""
    torch.manual_seed(seed)
    net = ofa_networks.OFAMobileNetV3(
        n_classes=n_classes,
        dropout_rate=0,
        width_mult=width_mult,
        ks_list=[3, 5, 7],
        expand_ratio_list=[3, 4, 6],
        depth_list=[2, 3, 4],
    )
    randomize(net, seed)
    net.eval()
    return net


# the official supernet families as the model zoo ships them (ofa.model_zoo.ofa_net), keyed by class name
FAMILY_SUPERNETS = {
    "OFAMobileNetV3": dict(width_mult=1.0, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4]),
    "OFAProxylessNASNets": dict(width_mult=1.3, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4]),
    "OFAResNets": dict(depth_list=[0, 1, 2], expand_ratio_list=[0.2, 0.25, 0.35], width_mult_list=[0.65, 0.8, 1.0]),
}


def family_supernet(name: str, n_classes: int = 1000, dropout_rate: float = 0.0, seed: int = 0):
    """The official supernet of family `name` (a `FAMILY_SUPERNETS` key), torch seeded with `seed`."""
    torch.manual_seed(seed)
    return getattr(ofa_networks, name)(n_classes=n_classes, dropout_rate=dropout_rate, **FAMILY_SUPERNETS[name])


def specialized_subnet(supernet, seed: int = 0):
    """The supernet's active subnet as a standalone official network, as the model zoo ships one
    (`get_active_subnet()`), every parameter and BN buffer randomized, in eval mode."""
    subnet = supernet.get_active_subnet(preserve_weight=True)
    randomize(subnet, seed)
    return subnet.eval()


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest absolute difference relative to the largest official value (at least 1)."""
    return float(np.abs(ours - theirs).max() / max(1.0, np.abs(theirs).max()))


def state_dict_numpy(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def official_logits(net, config: dict, images_nhwc: np.ndarray) -> np.ndarray:
    net.set_active_subnet(ks=config["ks"], e=config["e"], d=config["d"])
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.transpose(images_nhwc, (0, 3, 1, 2)).copy())).numpy()


def exact_flops(subnet, resolution: int) -> int:
    """The official counter's formula (`ofa.utils.flops_counter`) summed in integers.

    `count_net_flops` accumulates in float32 tensors, so above 2**24 its total
    is rounded; this replica keeps every multiply-accumulate.
    """
    total = []

    def conv_hook(module, _, output):
        kernel_ops = module.weight.size()[2] * module.weight.size()[3]
        total.append(module.in_channels * output.nelement() * kernel_ops // module.groups)

    def linear_hook(module, _, __):
        total.append(module.in_features * module.out_features)

    handles = []
    for module in subnet.modules():
        if isinstance(module, torch.nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, torch.nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    subnet.eval()
    with torch.no_grad():
        subnet(torch.zeros(1, 3, resolution, resolution))
    for handle in handles:
        handle.remove()
    return int(sum(total))


def official_subnet_counts(net, config: dict, resolution: int) -> tuple[int, float, int]:
    """(exact MACs, `count_net_flops` (float32-rounded), `count_parameters`) of the official subnet."""
    net.set_active_subnet(ks=config["ks"], e=config["e"], d=config["d"])
    subnet = net.get_active_subnet(preserve_weight=True)
    rounded = count_net_flops(subnet, (1, 3, resolution, resolution))
    return exact_flops(subnet, resolution), rounded, int(count_parameters(subnet))


def official_recalibrate(net, config: dict, batches_nhwc: list[np.ndarray]) -> dict[str, np.ndarray]:
    net.set_active_subnet(ks=config["ks"], e=config["e"], d=config["d"])
    loader = [(torch.from_numpy(np.transpose(b, (0, 3, 1, 2)).copy()), None) for b in batches_nhwc]
    set_running_statistics(net, loader)
    return state_dict_numpy(net)


__all__ = [
    "randomize",
    "official_supernet",
    "family_supernet",
    "specialized_subnet",
    "state_dict_numpy",
    "relative_difference",
    "official_logits",
    "official_subnet_counts",
    "official_recalibrate",
]
