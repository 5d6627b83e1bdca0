import hashlib

import pytest
from PIL import Image

from ocr_core.captcha.synthetic import CAPTCHA_ALPHABET, draw_labels, generate_captchas
from ocr_core.errors import ConfigError


def _digest(paths):
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in paths)).hexdigest()


class TestGenerateCaptchas:
    def test_same_seed_same_bytes(self, tmp_path):
        first = generate_captchas(tmp_path / "a", 12, seed=3)
        second = generate_captchas(tmp_path / "b", 12, seed=3)
        assert _digest(first) == _digest(second)

    def test_other_seed_other_images(self, tmp_path):
        first = generate_captchas(tmp_path / "a", 12, seed=3)
        second = generate_captchas(tmp_path / "b", 12, seed=4)
        assert {p.name for p in first} != {p.name for p in second}

    def test_bytes_do_not_depend_on_worker_count(self, tmp_path):
        # 600 images span three render chunks.
        serial = generate_captchas(tmp_path / "a", 600, seed=5, workers=1)
        parallel = generate_captchas(tmp_path / "b", 600, seed=5, workers=2)
        assert _digest(serial) == _digest(parallel)

    def test_files_are_captcha_images_v2_format(self, tmp_path):
        paths = generate_captchas(tmp_path, 8, seed=1)
        assert len({p.stem for p in paths}) == 8
        for path in paths:
            assert path.suffix == ".png"
            assert len(path.stem) == 5 and set(path.stem) <= set(CAPTCHA_ALPHABET)
            with Image.open(path) as image:
                assert image.size == (200, 50)
                assert image.format == "PNG"

    def test_generation_leaves_global_random_alone(self, tmp_path):
        import random

        random.seed(11)
        expected = random.random()
        random.seed(11)
        generate_captchas(tmp_path, 3, seed=1)
        assert random.random() == expected


class TestDrawLabels:
    def test_distinct_and_reproducible(self):
        labels = draw_labels(500, seed=9)
        assert len(set(labels)) == 500
        assert labels == draw_labels(500, seed=9)

    @pytest.mark.parametrize("count", [0, -1, 19**5])
    def test_impossible_counts_are_refused(self, count):
        with pytest.raises(ConfigError, match="count must be between"):
            draw_labels(count, seed=0)


class TestShards:
    def test_shards_cover_the_labels_in_whole_chunks(self, monkeypatch):
        from ocr_core.captcha import synthetic

        monkeypatch.setattr(synthetic, "CHUNK_SIZE", 4)
        shards = synthetic.plan_shards(14, seed=2, shards=3)
        assert [len(s.labels) for s in shards] == [8, 6]  # 4 chunks in 2 shards of 2 chunks
        assert [s.first_chunk for s in shards] == [0, 2]
        assert [label for s in shards for label in s.labels] == draw_labels(14, 2)
        assert [seed for _, seed in shards[1].chunks()] == ["render:2:2", "render:2:3"]

    def test_bytes_do_not_depend_on_the_sharding(self, tmp_path, monkeypatch):
        from ocr_core.captcha import synthetic

        monkeypatch.setattr(synthetic, "CHUNK_SIZE", 4)
        whole = generate_captchas(tmp_path / "whole", 12, seed=5)
        sharded = [path for shard in synthetic.plan_shards(12, seed=5, shards=3)
                   for path in synthetic.render_shard(tmp_path / "sharded", shard)]
        assert [p.name for p in sharded] == [p.name for p in whole]
        assert _digest(sharded) == _digest(whole)
        other = synthetic.plan_shards(12, seed=5, shards=1)[0].chunks()
        assert len(other) == 3  # three chunks, each with its own render seed

    def test_no_shards_is_an_error(self):
        from ocr_core.captcha.synthetic import plan_shards

        with pytest.raises(ConfigError, match="shards must be at least 1, got 0"):
            plan_shards(10, seed=1, shards=0)
