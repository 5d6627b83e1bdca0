from pathlib import Path

import pytest
from pydantic import ValidationError

from ocr_core.config import CaptchaParams, RetrainParams


class TestRetrainParams:
    def test_extends_the_captcha_parameters(self):
        params = RetrainParams(num_samples=40, epochs=1)
        assert isinstance(params, CaptchaParams)
        assert Path(params.results_dir).is_absolute()

    def test_the_evaluation_seed_is_reserved(self):
        with pytest.raises(ValidationError, match="reserved evaluation_seed"):
            RetrainParams(seed=2024)
        with pytest.raises(ValidationError, match="reserved evaluation_seed"):
            RetrainParams(seed=5, evaluation_seed=5)

    def test_a_held_out_folder_frees_the_seed(self, tmp_path):
        params = RetrainParams(seed=2024, evaluation_dir=tmp_path / "held-out")
        assert params.evaluation_dir == (tmp_path / "held-out").absolute()

    def test_real_data_needs_a_held_out_folder(self, tmp_path):
        with pytest.raises(ValidationError, match="needs evaluation_dir"):
            RetrainParams(source="dir", data_dir=tmp_path)
        assert RetrainParams(source="dir", data_dir=tmp_path, evaluation_dir=tmp_path / "e")

    def test_margin_is_a_fraction(self):
        with pytest.raises(ValidationError):
            RetrainParams(promotion_margin=1.5)

    def test_significance_is_a_level_between_zero_and_one(self):
        assert RetrainParams().significance == 0.05
        assert RetrainParams(significance=0.01).significance == 0.01
        for bad in (0, 1, -0.1):
            with pytest.raises(ValidationError, match="significance"):
                RetrainParams(significance=bad)
        form = RetrainParams.model_json_schema()["properties"]["significance"]  # the UI's form
        assert (form["exclusiveMinimum"], form["exclusiveMaximum"]) == (0, 1)
        assert "McNemar" in form["description"]


class TestSeedPerRun:
    def test_fixed_seed_by_default(self):
        from flows.retrain import seeded_for_run

        params = RetrainParams(seed=3)
        assert seeded_for_run(params, "run-a") is params

    def test_each_run_draws_its_own_reproducible_seed(self):
        from flows.retrain import seeded_for_run

        params = RetrainParams(reseed_each_run=True)
        seeds = {seeded_for_run(params, f"run-{index}").seed for index in range(20)}
        assert len(seeds) == 20
        assert seeded_for_run(params, "run-1").seed == seeded_for_run(params, "run-1").seed
        assert params.evaluation_seed not in seeds
