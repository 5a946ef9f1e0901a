"""The trainer's input: batches of the training images, distributed over the replicas (and, for
streamed sources, read by each worker from its own files)."""

from __future__ import annotations

from typing import Any

from ofa_tf._backend import tf
from ofa_tf.data.pipeline import order_seed, train_dataset
from ofa_tf.data.sources import ImageSource
from ofa_tf.training.config import TrainConfig


def training_batches(
    source: ImageSource, config: TrainConfig, strategy: tf.distribute.Strategy, start_batch: int
) -> tuple[Any, dict[str, Any] | None]:
    """(the distributed training batches from batch `start_batch` on, a record of this worker's
    input pipeline for the run's metrics, or None for an in-memory source)."""
    if source.decoded_shuffle_buffer is None:  # in memory: one pipeline, split over the replicas
        dataset = train_dataset(
            source.train_examples(seed=config.seed), source.n_train, config.batch_size, config.resolutions,
            seed=config.seed, start_batch=start_batch, crop_scale=config.crop_scale, shuffle_buffer=None,
        )
        return strategy.experimental_distribute_dataset(dataset), None
    record: dict[str, Any] = {}

    def worker_dataset(context: tf.distribute.InputContext) -> tf.data.Dataset:
        """This worker's share of each batch, read from its own files (disjoint across workers), split
        between its replicas; batch `i` has the same resolution on every worker."""
        shard = (context.num_input_pipelines, context.input_pipeline_id)
        per_replica = context.get_per_replica_batch_size(config.batch_size)
        per_worker = config.batch_size // context.num_input_pipelines
        files = getattr(source, "shard_files", lambda _: ())(shard)
        record.update({"event": "input", "pipeline": shard[1], "pipelines": shard[0], "files": list(files)})
        # resuming a streamed run starts a new file order rather than decoding every image already
        # trained on; --deterministic keeps the exact order (and pays that cost)
        dataset = train_dataset(
            source.train_examples(seed=order_seed(config.seed, start_batch, config.deterministic), shard=shard),
            source.n_train // shard[0],
            per_worker,
            config.resolutions,
            seed=config.seed,
            start_batch=start_batch,
            crop_scale=config.crop_scale,
            shuffle_buffer=source.decoded_shuffle_buffer,
            exact_resume=config.deterministic,
        )
        return dataset if per_replica == per_worker else dataset.rebatch(per_replica)

    return strategy.distribute_datasets_from_function(worker_dataset), record
