"""Promotion exports the champion in TF Serving's layout; a failed export leaves the previous
version serving."""

from pathlib import Path

import pytest

from ocr_core.registry import Registry
from ocr_core.registry.serving import promote
from tests.bundles import constant_reader


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A registry with v1 (reads "2" everywhere) and v3 (reads "3"), no champion yet."""
    registry = Registry.of(tmp_path / "results")
    for favourite in (1, 2):
        registry.register(constant_reader(tmp_path / f"bundle-{favourite}", favourite),
                          training_data={"source": "synthetic"}, params={})
    return registry


def served(registry: Registry) -> list[str]:
    """Every entry of the crnn serving folder (versions and anything left behind)."""
    return sorted(p.name for p in (registry.root.local / "registry" / "serving" / "crnn").iterdir())


@pytest.mark.slow
def test_each_promotion_leaves_only_the_champion_in_the_serving_folder(registry):
    import tensorflow as tf

    first = promote(registry, registry.version("v1"), "first model")
    assert first == {"exported": True, "serving": "v1",
                     "path": str(registry.root.local / "registry" / "serving" / "crnn" / "1")}
    assert (registry.root.local / "registry" / "serving" / "crnn" / "1" / "saved_model.pb").is_file()
    promote(registry, registry.version("v2"), "better")
    assert served(registry) == ["2"] and registry.champion().name == "v2"
    serve = tf.saved_model.load(str(registry.root.local / "registry" / "serving" / "crnn" / "2"))
    image = tf.io.encode_png(tf.zeros((50, 200, 3), tf.uint8))
    assert serve.signatures["serving_default"](images=tf.stack([image]))["text"].numpy()[0] \
        == b"3"  # class 2 ("3") at every step: the repeats merge
    promote(registry, registry.version("v1"), "rollback")
    assert served(registry) == ["1"]


@pytest.mark.slow
def test_a_failed_export_leaves_the_previous_version_serving_and_says_so(registry):
    promote(registry, registry.version("v1"), "first model")
    (registry.version("v2").path / "model.keras").write_bytes(b"damaged")
    record = promote(registry, registry.version("v2"), "better")
    assert record["exported"] is False and record["serving"] == ["v1"]
    assert "cannot load" in record["error"]
    assert served(registry) == ["1"]  # no half-written version 2 either
    assert registry.champion().name == "v2"


@pytest.mark.slow
def test_promotion_on_a_store_uploads_the_version_for_a_watching_server(s3_root, tmp_path):
    registry = Registry.of(s3_root)
    for favourite in (1, 2):
        registry.register(constant_reader(tmp_path / f"bundle-{favourite}", favourite),
                          training_data={"source": "synthetic"}, params={})
    record = promote(registry, registry.version("v1"), "first model")
    assert record["path"] == f"{s3_root}/registry/serving/crnn/1"
    assert registry.root.exists("registry/serving/crnn/1/saved_model.pb")
    promote(registry, registry.version("v2"), "better")
    assert registry.root.listdir("registry/serving/crnn") == ["2"]
