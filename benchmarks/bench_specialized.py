"""Official specialized networks of every family through ofa-tf: equality, MACs and TFLite latency on this host.

For each official supernet family (OFA-MobileNetV3 w1.0, ProxylessNAS w1.3,
ResNet50-D) the largest and the smallest subnet are taken from the official
package (`get_active_subnet()`: config + weights, randomized, as the model zoo
ships them), converted with `ofa-tf convert-official --specialized`'s
function, checked against the official logits, counted, exported to TFLite
fp32 and int8 (calibrated on random images: latency does not depend on the
weights), each in every depthwise form the export may ship, and timed with LiteRT (XNNPACK) at 1 thread, CPU time of the invoking
thread, median of `--rounds` x `--runs` invokes, all models interleaved.
Needs the test extra (torch, ofa).

    python benchmarks/bench_specialized.py [--resolution 224] [--rounds 5] [--runs 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_export import interleaved_medians_ms  # noqa: E402
from results_io import published_run, write_results  # noqa: E402

FAMILIES = {"MobileNetV3 w1.0": "OFAMobileNetV3", "ProxylessNAS w1.3": "OFAProxylessNASNets", "ResNet50-D": "OFAResNets"}


def _official_subnet(family: str, which: str):
    import official_oracle as oracle

    supernet = oracle.family_supernet(FAMILIES[family])
    if which == "max":
        supernet.set_max_net()
    else:
        supernet.set_active_subnet(**_min_arch(supernet, FAMILIES[family]))
    return oracle.specialized_subnet(supernet)


def _min_arch(supernet, name: str) -> dict:
    if name == "OFAResNets":
        return {"d": min(supernet.depth_list), "e": min(supernet.expand_ratio_list), "w": 0}
    return {"ks": min(supernet.ks_list), "e": min(supernet.expand_ratio_list), "d": min(supernet.depth_list)}


@click.command()
@click.option("--resolution", default=224, show_default=True)
@click.option("--rounds", default=5, show_default=True)
@click.option("--runs", default=2, show_default=True)
@click.option("--family", "families", multiple=True, type=click.Choice(list(FAMILIES)), help="Default: all.")
@click.option("--subnet", "subnets", multiple=True, type=click.Choice(["max", "min"]), help="Default: both.")
def main(resolution: int, rounds: int, runs: int, families: tuple[str, ...], subnets: tuple[str, ...]):
    import torch

    from ofa_tf.supernet.counting import count_model_macs, count_model_params
    from ofa_tf.export.forms import FORMS, for_int8, large_depthwise_layers
    from ofa_tf.export.rewrite import rebuild
    from ofa_tf.export.tflite import convert_to_tflite
    from ofa_tf.layers.net_config import from_official_specialized

    published = published_run()
    rng = np.random.default_rng(0)
    images = rng.normal(size=(1, resolution, resolution, 3)).astype(np.float32)
    representative = lambda: ([rng.normal(size=(1, resolution, resolution, 3)).astype(np.float32)] for _ in range(8))
    contents, facts = {}, {}
    for family in families or FAMILIES:
        for which in subnets or ("max", "min"):
            subnet = _official_subnet(family, which)
            state = {k: v.numpy() for k, v in subnet.state_dict().items()}
            start = time.perf_counter()
            model = from_official_specialized(subnet.config, state, resolution)
            seconds = time.perf_counter() - start
            with torch.no_grad():
                expected = subnet(torch.from_numpy(np.transpose(images, (0, 3, 1, 2)).copy())).numpy()
            difference = float(np.abs(model(images).numpy() - expected).max() / np.abs(expected).max())
            key = f"{family} {which}"
            facts[key] = (count_model_macs(model), count_model_params(model), difference, seconds)
            forms = FORMS if large_depthwise_layers(model) else ("plain",)
            for form in forms:  # every depthwise form `ofa-tf export` may ship; it ships the fastest
                contents[(key, "fp32", form)] = convert_to_tflite(rebuild(model, depthwise_form=form))
                int8_model = rebuild(model, int8_friendly=True, fold_scales=True, depthwise_form=for_int8(form))
                contents[(key, "int8", form)] = convert_to_tflite(int8_model, "int8", representative)
            print(f"{key}: {facts[key][0] / 1e6:.1f}M MACs, converted in {seconds:.1f} s, max rel logit diff {difference:.1e}", flush=True)
    latency = interleaved_medians_ms(contents, 1, rounds, runs, time.thread_time_ns)
    rows = []
    for key, (macs, params, difference, seconds) in facts.items():
        best = {}
        for mode in ("fp32", "int8"):
            timed = {form: ms for (k, m, form), ms in latency.items() if k == key and m == mode}
            best[mode] = min(timed, key=timed.get)
            best[f"{mode} plain"] = timed["plain"]
        fp32, int8 = latency[(key, "fp32", best["fp32"])], latency[(key, "int8", best["int8"])]
        rows.append([key, f"{macs / 1e6:.1f}", f"{params / 1e6:.2f}", f"{difference:.1e}", f"{seconds:.1f}",
                     f"{best['fp32 plain']:.2f}", f"{fp32:.2f} ({best['fp32']})", f"{best['int8 plain']:.2f}",
                     f"{int8:.2f} ({best['int8']})", f"{int8 / fp32:.2f}"])
        print(" | ".join(rows[-1]), flush=True)
    path = write_results(
        "bench_specialized",
        f"Official specialized networks in TFLite (LiteRT XNNPACK, {resolution} px, batch 1, 1 thread CPU time)",
        ["network", "MMACs", "M params", "max rel logit diff vs official", "convert (s)", "fp32 plain (ms)",
         "fp32 fastest form (ms)", "int8 plain (ms)", "int8 fastest form (ms)", "int8 / fp32, fastest forms"],
        rows,
        {"rounds_x_runs": f"{rounds} x {runs}", "note": "largest (max) and smallest (min) subnet of each official supernet, "
         "random weights; int8 = the export's default int8 graph (hard activations rewritten and folded); "
         "forms: how depthwise kernels above 5x5 are written (export/forms.py), `ofa-tf export` times them and ships "
         "the fastest"},
        published=published,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
