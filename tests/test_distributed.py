"""tf.distribute: 2 logical CPU replicas (MirroredStrategy) and 2 worker processes on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow  # each test runs TensorFlow in child processes


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


def _write_tfrecords(folder, n_files=4, per_file=16):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in [f"train-{i:05d}-of-{n_files:05d}" for i in range(n_files)] + ["validation-00000-of-00001"]:
        with tf.io.TFRecordWriter(str(folder / name)) as writer:
            for i in range(per_file):
                encoded = tf.io.encode_jpeg(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).numpy()
                feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
                           "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 10]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return sorted(str(p) for p in folder.glob("train-*"))


def test_two_workers_train_in_sync_on_their_own_files(tmp_path):
    from ofa_tf import load_supernet

    train_files = _write_tfrecords(tmp_path / "records")
    config = tmp_path / "tiny.json"
    phase = dict(name="teacher", ks_list=[7], expand_ratio_list=[6], depth_list=[2], epochs=1, warmup_epochs=0,
                 base_lr=0.05, subnets_per_step=1, kd=False)
    config.write_text(json.dumps(dict(  # a depth-2 supernet: no skippable blocks, half the tracing
        data=str(tmp_path / "records"), width_mult=0.25, depth_list=[2], resolutions=[24, 32], eval_resolutions=[32],
        batch_size=16, dropout_rate=0.0, holdout_images=4, bn_recalibration_images=16, bn_recalibration_batch=8,
        max_steps_per_phase=3, phases=[phase])))
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
    records = [[json.loads(line) for line in (tmp_path / f"worker{i}" / "metrics.jsonl").read_text().splitlines()]
               for i in range(2)]
    assert [s["step"] for s in records[0] if s["event"] == "step"] == [1, 2, 3]
    # each worker read its own files: disjoint, together the whole training split
    inputs = [next(r for r in worker if r["event"] == "input") for worker in records]
    assert sorted(r["pipeline"] for r in inputs) == [0, 1] and all(r["pipelines"] == 2 for r in inputs)
    files = [set(r["files"]) for r in inputs]
    assert files[0] and files[1] and not files[0] & files[1] and files[0] | files[1] == set(train_files)
