"""Artifact links: file:// by default, through a configured base URL, a store's URL on a store."""

from pathlib import Path

from ocr_core.storage import open_root
from tasks.links import artifact_link, stored_location
from tasks.roots import RootedStep


def link_in_a_step(results_dir: str, key: str) -> tuple[str, str]:
    """The link and stored location of file `key`, made inside a step on `results_dir`."""

    def step(results_dir: Path) -> tuple[str, str]:
        path = results_dir / key
        return artifact_link(path), stored_location(path)

    return RootedStep(step)(results_dir)


def test_file_uri_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("OCR_PIPELINE_LINK_BASE_URL", raising=False)
    assert artifact_link(tmp_path / "plots" / "a b.png") == (tmp_path / "plots" / "a b.png").as_uri()
    assert link_in_a_step(str(tmp_path), "plots/a b.png") == (
        (tmp_path / "plots" / "a b.png").as_uri(), str(tmp_path / "plots" / "a b.png"))


def test_base_url_serves_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("OCR_PIPELINE_LINK_BASE_URL", "https://files.example.org/ocr/")
    link, _ = link_in_a_step(str(tmp_path), "plots/a b.png")
    assert link == "https://files.example.org/ocr/plots/a%20b.png"
    assert artifact_link(Path("/elsewhere/x.png")) == "file:///elsewhere/x.png"  # outside a step


def test_a_store_roots_files_link_to_their_urls(monkeypatch, tmp_path):
    monkeypatch.delenv("OCR_PIPELINE_LINK_BASE_URL", raising=False)
    monkeypatch.setenv("OCR_PIPELINE_SCRATCH", str(tmp_path / "scratch"))
    assert open_root("s3://team/ocr").local.is_relative_to(tmp_path / "scratch")
    assert link_in_a_step("s3://team/ocr", "plots/p.png") == (
        "s3://team/ocr/plots/p.png", "s3://team/ocr/plots/p.png")
