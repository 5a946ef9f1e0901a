"""Evolutionary search speed: ofa-tf's vectorized EvolutionFinder vs the official one, same predictor and budget.

Both search OFA-MobileNetV3 w1.0 under a MAC budget with the official
hyper-parameters (population 100, parents 25%, mutation 50%, mutate
probability 0.1, resolution mutate 0.5) and the same accuracy predictor (the
official library `AccuracyPredictor`, random weights, loaded into ofa-tf from
its state dict), for the same number of generations, one after the other in
one run. The official efficiency model is `Mbv3FLOPsModel` (its analytic
count); ours is the exact MAC table.

Needs the test extras (torch==2.13.0 CPU and the official `ofa` package).
Usage: python benchmarks/bench_search.py [--generations 50] [--budget-mmacs 400]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

RESOLUTIONS = (160, 176, 192, 208, 224)


@click.command()
@click.option("--generations", default=500, show_default=True)
@click.option("--budget-mmacs", default=400.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(generations: int, budget_mmacs: float, seed: int):
    import random

    import official_oracle  # noqa: F401  (stand-ins for torchvision/gdown)
    import torch
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    from ofa.nas.accuracy_predictor.acc_predictor import AccuracyPredictor
    from ofa.nas.accuracy_predictor.arch_encoder import MobileNetArchEncoder
    from ofa.nas.efficiency_predictor import Mbv3FLOPsModel
    from ofa.nas.search_algorithm.evolution import EvolutionFinder as OfficialFinder
    from results_io import published_run, write_results

    from ofa_tf import SearchSpace
    from ofa_tf.supernet.counting import EfficiencyTable
    from ofa_tf.interop.official_nas import accuracy_predictor_from_state_dict
    from ofa_tf.nas.search_algorithm import EvolutionFinder

    torch.manual_seed(seed)
    random.seed(seed)
    encoder = MobileNetArchEncoder(image_size_list=list(RESOLUTIONS))
    official_predictor = AccuracyPredictor(encoder, device="cpu")
    with torch.no_grad():
        official_predictor.base_acc.fill_(0.75)
    ofa_net = OFAMobileNetV3(n_classes=1000, dropout_rate=0, width_mult=1.0, ks_list=[3, 5, 7],
                             expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    official = OfficialFinder(Mbv3FLOPsModel(ofa_net), official_predictor, max_time_budget=generations)
    start = time.perf_counter()
    with torch.no_grad():
        _, (official_acc, official_arch, official_macs) = official.run_evolution_search(budget_mmacs)
    official_seconds = time.perf_counter() - start
    print(f"official: {official_seconds:7.2f} s  best predicted {float(official_acc):.4f} at {official_macs:.1f} MMACs")

    space = SearchSpace(resolutions=RESOLUTIONS)
    predictor = accuracy_predictor_from_state_dict(
        {k: v.detach().numpy() for k, v in official_predictor.state_dict().items()}, space
    )
    table = EfficiencyTable(space)
    ours = EvolutionFinder(space, predictor.predict, table.macs, budget_mmacs * 1e6, generations=generations)
    start = time.perf_counter()
    result = ours.run(seed)
    ours_seconds = time.perf_counter() - start
    print(f"ofa-tf  : {ours_seconds:7.2f} s  best predicted {result.best_accuracy:.4f} at {result.best_efficiency / 1e6:.1f} MMACs")
    speedup = official_seconds / ours_seconds
    print(f"speed-up (official time / ofa-tf time), {generations} generations: {speedup:.1f}x  (goal >= 10x)")
    path = write_results(
        "bench_search",
        f"Evolutionary search, OFA-MobileNetV3 w1.0, budget {budget_mmacs:g} MMACs, {generations} generations",
        ["implementation", "seconds", "best predicted accuracy", "best MMACs"],
        [
            ["official EvolutionFinder", f"{official_seconds:.2f}", f"{float(official_acc):.4f}", f"{official_macs:.1f}"],
            ["ofa-tf EvolutionFinder", f"{ours_seconds:.2f}", f"{result.best_accuracy:.4f}", f"{result.best_efficiency / 1e6:.1f}"],
        ],
        {"speedup": round(speedup, 1), "generations": generations, "command": " ".join(["python"] + sys.argv)},
        published=published_run(),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
