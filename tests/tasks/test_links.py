"""Artifact links: file:// by default, through a configured base URL under its root."""

from pathlib import Path

from tasks.links import artifact_link


def test_file_uri_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("OCR_PIPELINE_LINK_BASE_URL", raising=False)
    assert artifact_link(tmp_path / "plots" / "a b.png") == (tmp_path / "plots" / "a b.png").as_uri()


def test_base_url_serves_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("OCR_PIPELINE_LINK_BASE_URL", "https://files.example.org/ocr/")
    monkeypatch.setenv("OCR_PIPELINE_LINK_ROOT", str(tmp_path))
    assert (artifact_link(tmp_path / "plots" / "a b.png")
            == "https://files.example.org/ocr/plots/a%20b.png")
    outside = Path("/elsewhere/x.png")
    assert artifact_link(outside) == "file:///elsewhere/x.png"


def test_root_defaults_to_the_results_root(monkeypatch, tmp_path):
    monkeypatch.setenv("OCR_PIPELINE_LINK_BASE_URL", "http://h/r")
    monkeypatch.delenv("OCR_PIPELINE_LINK_ROOT", raising=False)
    monkeypatch.setenv("OCR_PIPELINE_RESULTS", str(tmp_path / "results"))
    assert artifact_link(tmp_path / "results" / "plots" / "p.png") == "http://h/r/plots/p.png"
