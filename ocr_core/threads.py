"""CPU threads for training: how many CPUs this process may use, how to share them between
concurrent trainings, and how to cap TensorFlow's thread pools to a share."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_training(concurrent: int) -> int:
    """TensorFlow threads for each of `concurrent` trainings sharing this machine's CPUs."""
    return max(1, available_cpus() // max(1, concurrent))


def configure_threads(threads: int | None) -> None:
    """Cap TensorFlow's CPU threads; only possible before TF runs its first op in this process."""
    if not threads:
        return
    import tensorflow as tf  # here: the runners ask for CPUs without loading TensorFlow

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        logger.debug("TensorFlow already initialised; thread counts left as they are")
