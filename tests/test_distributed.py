"""tf.distribute: 2 logical CPU replicas (MirroredStrategy) and 2 worker processes on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def test_mirrored_step_equals_the_mean_of_per_replica_gradients(tmp_path):
    result = subprocess.run(
        [sys.executable, str(HERE / "distributed_check.py"), str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    # the SGD update of the 2-replica step equals the one from the summed per-half gradients
    assert report["max_update_diff"] <= 1e-4 * report["max_update"], report


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_in_sync(tmp_path):
    from ofa_tf import load_supernet

    config = tmp_path / "tiny.json"
    phase = dict(name="teacher", ks_list=[7], expand_ratio_list=[6], depth_list=[2], epochs=1, warmup_epochs=0,
                 base_lr=0.05, subnets_per_step=1, kd=False)
    config.write_text(json.dumps(dict(  # a depth-2 supernet: no skippable blocks, half the tracing
        width_mult=0.25, depth_list=[2], resolutions=[24, 32], eval_resolutions=[32], batch_size=16, dropout_rate=0.0,
        bn_recalibration_images=32, bn_recalibration_batch=16, max_steps_per_phase=3, phases=[phase])))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        command = [sys.executable, "-m", "ofa_tf.cli", "train", "--distribute", "multi-worker",
                   "--out", str(tmp_path / f"worker{index}"), "--config", str(config)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=900) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    nets = [load_supernet(tmp_path / f"worker{i}" / "supernet") for i in range(2)]
    for a, b in zip(nets[0].trainable_variables, nets[1].trainable_variables):
        assert np.allclose(a.numpy(), b.numpy(), atol=1e-6), a.path
    steps = [json.loads(line) for line in (tmp_path / "worker0" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if s["event"] == "step"] == [1, 2, 3]
