"""Input at ImageNet scale: open time, memory and throughput of streamed TFRecords and image folders.

The script writes synthetic ImageNet-like data under --work (resumable: kept
files are reused): JPEGs of ~400x350 px (~110 KB, smooth noise, quality 95),
1,000 classes numbered 1..1000 as ImageNet's TFRecords, 1,024 records per
file. Each measurement runs in a fresh process:
  - open: `open_source` on N records with a `labels.txt` (reads one file)
    and without one (reads every label once), seconds and resident-memory
    growth after the open and after 20 training batches;
  - throughput: the training pipeline (random resized crop to 224 px, flip,
    normalization; batch 64) in images/s on this machine's cores, for the
    TFRecords and for the same JPEGs as an image folder, next to the training
    step's consumption (OFA-MobileNetV3 w1.0, 224 px, batch 32, one subnet).

    python benchmarks/bench_input.py [--records 20000,200000] [--throughput-records 4096]

The 200,000-record set for open/memory uses small JPEGs (64x56 px) to fit the
disk: what is measured there is what grows with the record count, not the
image size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

RECORDS_PER_FILE = 1024
N_CLASSES = 1000


def _jpegs(n: int, size: tuple[int, int], seed: int = 0) -> list[bytes]:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        coarse = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3)).astype(np.float32)
        smooth = tf.image.resize(coarse[None], size, "bicubic")[0] + rng.normal(0, 12, (*size, 3))
        images.append(tf.io.encode_jpeg(tf.cast(tf.clip_by_value(smooth, 0, 255), tf.uint8), quality=95).numpy())
    return images


def _example(encoded: bytes, label: int) -> bytes:
    import tensorflow as tf

    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def make_tfrecords(folder: Path, n_records: int, size: tuple[int, int]) -> Path:
    """`n_records` training records (+ one validation file) and a labels.txt; kept if already complete."""
    import tensorflow as tf

    done = folder / "complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    images = _jpegs(64, size)
    n_files = -(-n_records // RECORDS_PER_FILE)
    for f in range(n_files):
        count = min(RECORDS_PER_FILE, n_records - f * RECORDS_PER_FILE)
        with tf.io.TFRecordWriter(str(folder / f"train-{f:05d}-of-{n_files:05d}")) as writer:
            for i in range(count):
                index = f * RECORDS_PER_FILE + i
                writer.write(_example(images[index % len(images)], 1 + index % N_CLASSES))
    with tf.io.TFRecordWriter(str(folder / "validation-00000-of-00001")) as writer:
        for i in range(256):
            writer.write(_example(images[i % len(images)], 1 + i % N_CLASSES))
    (folder / "labels.txt").write_text("".join(f"{i + 1} n{i:08d}\n" for i in range(N_CLASSES)))
    done.touch()
    return folder


def make_image_folder(folder: Path, n_images: int, size: tuple[int, int]) -> Path:
    done = folder / "complete"
    if done.is_file():
        return folder
    images = _jpegs(64, size)
    for i in range(n_images):
        path = folder / "train" / f"n{i % 100:08d}" / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(images[i % len(images)])
    done.touch()
    return folder


# Run in a fresh process per measurement: memory and open time without another measurement's state.
_PROBE = r"""
import json, resource, sys, time
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
from ofa_tf._backend import tf
from ofa_tf.data.sources import open_source
from ofa_tf.data.pipeline import train_dataset
data, with_labels, batches, batch_size, resolution = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import pathlib
labels = pathlib.Path(data) / "labels.txt"
hidden = pathlib.Path(data) / "labels.txt.off"
if not with_labels and labels.exists():
    labels.rename(hidden)
try:
    before = rss_mb()
    started = time.perf_counter()
    source = open_source(data)
    opened = time.perf_counter() - started
    after_open = rss_mb()
finally:
    if hidden.exists():
        hidden.rename(labels)
dataset = train_dataset(source.train_examples(seed=0), source.n_train, batch_size, [resolution], seed=0,
                        shuffle_buffer=source.decoded_shuffle_buffer)
iterator = iter(dataset)
next(iterator)  # pipeline start-up (buffers fill)
started = time.perf_counter()
for _ in range(batches):
    next(iterator)
seconds = time.perf_counter() - started
print(json.dumps({"open_seconds": opened, "n_train": source.n_train, "rss_open_mb": after_open - before,
                  "rss_stream_mb": rss_mb() - before, "images_per_second": batches * batch_size / seconds,
                  "skipped": source.counter.count}))
"""

_STEP = r"""
import json, sys, time
import numpy as np
from ofa_tf._backend import tf
from ofa_tf.data.arrays import ArraySource
from ofa_tf.training.config import apply_overrides
from ofa_tf.training.presets import paper_preset
from ofa_tf.training.trainer import ProgressiveShrinkingTrainer
import tempfile
batch, resolution = int(sys.argv[1]), int(sys.argv[2])
uint8 = np.zeros((batch, 8, 8, 3), np.uint8)
labels = np.zeros(batch, np.int64)
source = ArraySource(uint8, labels, uint8, labels, tuple(str(i) for i in range(1000)), "random")
config = apply_overrides(paper_preset(), {"batch_size": batch, "holdout_images": 0, "phases": paper_preset().phases[:1]})
with tempfile.TemporaryDirectory() as tmp:
    trainer = ProgressiveShrinkingTrainer(config, tmp, source=source)
x = tf.random.normal([batch, resolution, resolution, 3])
y = tf.zeros([batch], tf.int64)
subnet = [trainer.net.space.max_config()]
times = []
for step in range(4):
    started = time.perf_counter()
    trainer.train_step(x, y, subnet, 0.01, distill=False)
    times.append(time.perf_counter() - started)
print(json.dumps({"images_per_second": batch / float(np.median(times[1:]))}))
"""


def _probe(script: str, *args) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"measurement failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_input"), help="synthetic data (kept, reused)")
    parser.add_argument("--records", default="20000,200000", help="record counts of the open/memory sets (small JPEGs)")
    parser.add_argument("--throughput-records", type=int, default=4096, help="records of ~110 KB for throughput (0: skip)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--image-size", default="350x400", help="H x W of the throughput set's JPEGs")
    parser.add_argument("--no-step", action="store_true", help="skip the training step's consumption")
    args = parser.parse_args()
    defaults = vars(parser.parse_args([]))
    height, width = (int(v) for v in args.image_size.split("x"))
    rows, results = [], {"open": {}, "throughput": {}}
    for n in [int(v) for v in args.records.split(",") if v]:
        folder = make_tfrecords(args.work / f"small_{n}", n, (56, 64))
        for with_labels in (True, False):
            key = f"{n} records, {'labels.txt' if with_labels else 'no labels.txt'}"
            results["open"][key] = measured = _probe(_PROBE, folder, int(with_labels), 4, 64, 64)
            rows.append(["TFRecords (64x56 JPEGs)", key, f"{measured['open_seconds']:.2f}", f"{measured['rss_open_mb']:.0f}",
                         f"{measured['rss_stream_mb']:.0f}", "-"])
            print(rows[-1], flush=True)
    sets, size_kb = [], None
    if args.throughput_records > 0:
        big = make_tfrecords(args.work / f"large_{args.throughput_records}", args.throughput_records, (height, width))
        size_kb = sum(p.stat().st_size for p in big.glob("train-*")) / args.throughput_records / 1024
        folder = make_image_folder(args.work / f"folder_{args.throughput_records}", args.throughput_records, (height, width))
        sets = [("TFRecords", big), ("image folder", folder)]
    for name, data in sets:
        results["throughput"][name] = measured = _probe(_PROBE, data, 1, args.batches, 64, args.resolution)
        rows.append([f"{name} ({width}x{height} JPEGs, {size_kb:.0f} KB)", f"{args.throughput_records} images, "
                     f"{args.resolution} px train transform", f"{measured['open_seconds']:.2f}", f"{measured['rss_open_mb']:.0f}",
                     f"{measured['rss_stream_mb']:.0f}", f"{measured['images_per_second']:.0f}"])
        print(rows[-1], flush=True)
    if not args.no_step:
        results["training_step"] = step = _probe(_STEP, 32, args.resolution)
        rows.append(["training step (w1.0, one subnet, batch 32)", f"{args.resolution} px", "-", "-", "-",
                     f"{step['images_per_second']:.0f}"])
        print(rows[-1], flush=True)
    path = write_results(
        "bench_input",
        "Streamed input: open time, resident memory and training-pipeline throughput (synthetic ImageNet-like data)",
        ["data", "set", "open (s)", "RSS growth after open (MB)", "RSS growth after 20+ batches (MB)", "images/s"],
        rows,
        {**results, "command": " ".join(["python"] + sys.argv), "jpeg_kb": size_kb and round(size_kb, 1)},
        published={**vars(args), "work": None} == {**defaults, "work": None},
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
