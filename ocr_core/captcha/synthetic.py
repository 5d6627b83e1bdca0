"""Seeded captchas in the captcha_images_v2 format: 200x50 PNGs named `<label>.png`.

The `captcha` package (0.7.x) draws every random choice from the `secrets` module, so its output
cannot be seeded. Each generator here loads a private copy of `captcha.image` whose `secrets` is a
seeded `random.Random`: the same seed gives the same bytes, and no process-global state is touched.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import multiprocessing
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ocr_core.errors import ConfigError

logger = logging.getLogger(__name__)

CAPTCHA_ALPHABET = "2345678bcdefgmnpwxy"
LABEL_LENGTH = 5
IMAGE_WIDTH = 200
IMAGE_HEIGHT = 50
CHUNK_SIZE = 250  # images per render seed: fixed, or the bytes would change


class _SeededSecrets:
    """The subset of the `secrets` API that `captcha.image` calls, backed by a private RNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)

    def randbits(self, k: int) -> int:
        return self._rng.getrandbits(k)

    def choice(self, seq: Sequence):  # noqa: ANN201 - mirrors secrets.choice
        return self._rng.choice(seq)


def _private_captcha_module(rng: random.Random) -> ModuleType:
    spec = importlib.util.find_spec("captcha.image")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.secrets = _SeededSecrets(rng)  # type: ignore[attr-defined]
    return module


class CaptchaGenerator:
    """Renders captcha images from one seed: the same seed and labels give the same PNG bytes."""

    def __init__(self, seed: int | str) -> None:
        captcha_image = _private_captcha_module(random.Random(seed))
        self._captcha = captcha_image.ImageCaptcha(width=IMAGE_WIDTH, height=IMAGE_HEIGHT)

    def png_bytes(self, label: str) -> bytes:
        """Render `label` with the package's default noise and return the PNG file's bytes.

        zlib level 1: the same pixels as PIL's default level 6 in 10% more bytes, encoded in
        60% of the time (a fifth of a captcha's rendering cost at level 6).
        """
        buffer = io.BytesIO()
        self._captcha.generate_image(label).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


def draw_labels(count: int, seed: int, alphabet: str = CAPTCHA_ALPHABET,
                length: int = LABEL_LENGTH) -> list[str]:
    """`count` distinct random labels, the same for the same seed.

    Raises:
        ConfigError: `count` is not positive or more than half of the possible labels.
    """
    capacity = len(alphabet) ** length
    if not 0 < count <= capacity // 2:
        raise ConfigError(f"count must be between 1 and {capacity // 2}, got {count}")
    rng = random.Random(f"labels:{seed}")
    labels: dict[str, None] = {}
    while len(labels) < count:
        labels["".join(rng.choice(alphabet) for _ in range(length))] = None
    return list(labels)


@dataclass(frozen=True)
class CaptchaShard:
    """A run of consecutive chunks of a generation: labels from chunk `first_chunk` on.

    Chunk `i` of a generation with seed `s` is always rendered from the seed `render:s:i`, so
    the bytes of an image depend on the seed and its position, never on how the chunks were
    grouped into shards or on which process rendered them.
    """

    seed: int
    first_chunk: int
    labels: tuple[str, ...]

    def chunks(self) -> list[tuple[list[str], str]]:
        """(labels, render seed) of each chunk of this shard."""
        return [(list(self.labels[i : i + CHUNK_SIZE]),
                 f"render:{self.seed}:{self.first_chunk + i // CHUNK_SIZE}")
                for i in range(0, len(self.labels), CHUNK_SIZE)]


def plan_shards(count: int, seed: int, shards: int = 1) -> list[CaptchaShard]:
    """Split a generation of `count` captchas into at most `shards` shards of whole chunks.

    Raises:
        ConfigError: `count` out of range (see `draw_labels`), or `shards` < 1.
    """
    if shards < 1:
        raise ConfigError(f"shards must be at least 1, got {shards}")
    labels = draw_labels(count, seed)
    chunks = -(-len(labels) // CHUNK_SIZE)
    per_shard = -(-chunks // min(shards, chunks))  # chunks per shard, rounded up
    return [CaptchaShard(seed, first, tuple(labels[first * CHUNK_SIZE : (first + per_shard) * CHUNK_SIZE]))
            for first in range(0, chunks, per_shard)]


def _render_chunk(out_dir: Path, labels: list[str], seed: str) -> None:
    generator = CaptchaGenerator(seed)
    for label in labels:
        (out_dir / f"{label}.png").write_bytes(generator.png_bytes(label))


def render_shard(out_dir: str | Path, shard: CaptchaShard, workers: int = 1) -> list[Path]:
    """Write the shard's captchas into `out_dir` as `<label>.png`; return their paths.

    Args:
        workers: processes to render with; 1 renders here (the only choice inside a daemonic
            process, such as a Dask worker, which may not start children).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(out_dir, labels, seed) for labels, seed in shard.chunks()]
    count = len(shard.labels)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_spawn_context()) as pool:
            for done, _ in enumerate(pool.map(_render_chunk, *zip(*jobs, strict=True)), 1):
                _log_progress(done, len(jobs), count)
    else:
        for done, job in enumerate(jobs, 1):
            _render_chunk(*job)
            _log_progress(done, len(jobs), count)
    return [out_dir / f"{label}.png" for label in shard.labels]


def generate_captchas(out_dir: str | Path, count: int, seed: int, workers: int = 1) -> list[Path]:
    """Write `count` distinct captchas into `out_dir` as `<label>.png`; return their paths.

    Images are rendered in fixed chunks, each from its own seed, so the bytes do not depend on
    `workers` (processes used to render) nor on how a caller shards the work (`plan_shards`).
    """
    (shard,) = plan_shards(count, seed, shards=1)
    return render_shard(out_dir, shard, workers)


def _log_progress(done: int, total: int, count: int) -> None:
    if done == total or done % max(1, total // 5) == 0:
        logger.info("generated %d/%d captchas", min(done * CHUNK_SIZE, count), count)


def _spawn_context() -> multiprocessing.context.BaseContext:
    # fork after TensorFlow has started threads can deadlock; spawn starts clean interpreters.
    return multiprocessing.get_context("spawn")
