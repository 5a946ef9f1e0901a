"""`ofa-tf export` stays within a memory bound on a mid-size subnet (a child process, so its peak is its own)."""

import json
import subprocess
import sys

import pytest

import numpy as np

import ofa_tf
from ofa_tf.export import memory

# 160 px w1.0, every kernel 7x7, expand 4, depth 3, 100 validation images: the export peaked at 4.98 GB while
# Keras ran eagerly in batches of 100 (keeping every activation), and in graph mode in batches of 32 at
# 1.10-1.18 GB, alone or beside another export
RESOLUTION = 160
PEAK_BOUND_GB = 3.5


@pytest.mark.slow
def test_a_mid_size_export_stays_under_its_memory_bound(tmp_path):
    net = ofa_tf.OFAMobileNetV3(width_mult=1.0, n_classes=10)
    net.build((None, None, None, 3))
    net.set_active_subnet(ks=7, e=4, d=3)
    ofa_tf.extract_subnet(net, net.active_config.with_resolution(RESOLUTION)).save(tmp_path / "k7.keras")
    command = [sys.executable, "-m", "ofa_tf.cli", "export", str(tmp_path / "k7.keras"), "--latency-only",
               "--validate-images", "100", "--depthwise-large", "plain", "--out", str(tmp_path / "k7.tflite")]
    child = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.returncode == 0, child.stdout[-2000:]
    # the export's own record: the child's ru_maxrss would report this test process's peak if larger
    peak_gb = json.loads((tmp_path / "k7.json").read_text())["peak_memory_gb"]
    print(f"peak resident memory of the export: {peak_gb:.2f} GB")
    assert peak_gb < PEAK_BOUND_GB, f"export peaked at {peak_gb:.2f} GB"


def test_the_peak_counts_this_process_own_memory():
    resident = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    block = np.ones(2**28 // 8)  # 256 MB, touched
    assert memory.peak_resident_bytes() >= resident + 0.9 * block.nbytes
