"""Allowed roots: which paths a served run may use, checked after symbolic links are resolved."""

import os
from pathlib import Path

import pytest

from ocr_core.config import IngestParams, PredictParams, RetrainParams
from ocr_core.errors import ConfigError
from ocr_core.guards.allowed_roots import (
    ALLOWED_ROOTS_ENV,
    allowed_roots,
    check_served_paths,
    check_under_roots,
    path_parameters,
    roots_setting,
)
from ocr_core.layout import RESULTS_ENV


class TestRoots:
    def test_the_results_root_and_the_setting_separated_by_pathsep(self, tmp_path, monkeypatch):
        monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results"))
        env = {ALLOWED_ROOTS_ENV: f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}{os.pathsep}"}
        assert allowed_roots(env) == [str((tmp_path / "results").resolve()),
                                      str((tmp_path / "a").resolve()), str((tmp_path / "b").resolve())]

    def test_without_it_the_results_root_is_the_only_root(self, tmp_path, monkeypatch):
        monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results"))
        assert allowed_roots({}) == [str((tmp_path / "results").resolve())]

    def test_store_roots_are_kept_as_urls(self, monkeypatch):
        monkeypatch.setenv(RESULTS_ENV, "s3://team/results/")
        assert allowed_roots({ALLOWED_ROOTS_ENV: "s3://team/captchas"}) == [
            "s3://team/results", "s3://team/captchas"]

    def test_roots_setting_resolves_and_drops_repeats(self, tmp_path):
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real")
        setting = roots_setting([tmp_path / "link", tmp_path / "real", tmp_path / "x"])
        assert setting.split(os.pathsep) == [str((tmp_path / "real").resolve()),
                                             str((tmp_path / "x").resolve())]


class TestCheck:
    def test_a_path_under_a_root_passes_resolved(self, tmp_path):
        root = tmp_path.resolve()
        assert check_under_roots(tmp_path / "a" / ".." / "b.csv", [root], "output") == str(root / "b.csv")

    def test_a_store_url_under_a_store_root_passes_and_a_sibling_prefix_does_not(self):
        roots = ["s3://team/results"]
        assert check_under_roots("s3://team/results/models/m", roots, "model") == \
            "s3://team/results/models/m"
        for outside in ("s3://team/results-evil/m", "s3://other/results/m", "/team/results/m"):
            with pytest.raises(ConfigError, match="model="):
                check_under_roots(outside, roots, "model")

    @pytest.mark.parametrize("url", ["s3://team/results/../private/p.csv",
                                     "s3://team/results/./x/../../private"])
    def test_a_store_url_cannot_climb_out_with_dot_segments(self, url):
        with pytest.raises(ConfigError, match=r"output=.* has a '\.' or '\.\.' segment"):
            check_under_roots(url, ["s3://team/results"], "output")

    def test_a_path_outside_names_the_parameter_and_the_roots(self, tmp_path):
        root = (tmp_path / "root").resolve()
        with pytest.raises(ConfigError) as error:
            check_under_roots("/etc/passwd.csv", [root], "output")
        assert "output=/etc/passwd.csv" in str(error.value) and str(root) in str(error.value)
        assert ALLOWED_ROOTS_ENV in str(error.value)

    def test_dot_dot_cannot_climb_out(self, tmp_path):
        root = (tmp_path / "root").resolve()
        with pytest.raises(ConfigError):
            check_under_roots(root / ".." / "elsewhere", [root], "data_dir")

    def test_a_symbolic_link_inside_pointing_outside_is_refused(self, tmp_path):
        root = tmp_path / "root"
        root.mkdir()
        (root / "escape").symlink_to(tmp_path / "outside")
        with pytest.raises(ConfigError, match="inputs\\[0\\]"):
            check_under_roots(root / "escape" / "x.png", [root.resolve()], "inputs[0]")

    def test_a_prefix_is_not_a_parent(self, tmp_path):
        with pytest.raises(ConfigError):
            check_under_roots(tmp_path / "root-evil", [(tmp_path / "root").resolve()], "output")


class TestServedParameters:
    def test_every_path_field_is_found(self, tmp_path):
        params = PredictParams(results_dir=tmp_path, inputs=[tmp_path / "a", tmp_path / "b"],
                               output=tmp_path / "p.csv", model=tmp_path / "m")
        names = [name for name, _ in path_parameters(params)]
        assert names == ["results_dir", "inputs[0]", "inputs[1]", "output", "model"]

    def test_store_inputs_and_output_are_confined_like_paths(self):
        root = "s3://team/results"
        inside = PredictParams(results_dir=root, inputs=[f"{root}/incoming", f"{root}/more/a.png"],
                               output=f"{root}/out/predictions.csv")
        check_served_paths(inside, [root], root)
        for name, change in (("inputs\\[1\\]", {"inputs": [f"{root}/in", "s3://other/in"]}),
                             ("output", {"output": "s3://team/elsewhere/p.csv"})):
            params = inside.model_copy(update=change)
            with pytest.raises(ConfigError, match=f"{name}=s3://.* is outside the allowed roots"):
                check_served_paths(params, [root], root)

    def test_ingest_source_and_destination_are_checked(self, tmp_path):
        root = tmp_path.resolve()
        params = IngestParams(results_dir=root, source_dir="/tmp", data_dir=root / "data")
        with pytest.raises(ConfigError, match="source_dir=/tmp "):
            check_served_paths(params, [root], root)

    def test_the_results_root_must_be_the_served_one(self, tmp_path):
        root = tmp_path.resolve()
        params = RetrainParams(results_dir=root / "inner")  # under a root, yet another registry
        with pytest.raises(ConfigError, match="results_dir=.* is not this deployment's"):
            check_served_paths(params, [root], root)

    def test_paths_inside_pass(self, tmp_path):
        root = tmp_path.resolve()
        params = RetrainParams(results_dir=root, source="dir", data_dir=root / "data",
                               evaluation_dir=root / "held-out")
        check_served_paths(params, [root], root)

    def test_evaluation_dir_outside_is_refused(self, tmp_path):
        root = (tmp_path / "root").resolve()
        params = RetrainParams(results_dir=root, source="dir", data_dir=root / "data",
                               evaluation_dir=Path("/srv/other"))
        with pytest.raises(ConfigError, match="evaluation_dir=/srv/other"):
            check_served_paths(params, [root], root)
