"""Parameters of the retrain and sweep flows: a captcha run (or a grid of trainings), then the
registry's champion/challenger gate on one evaluation set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from ocr_core.config.captcha import CaptchaParams
from ocr_core.config.common import AbsolutePath, Distinct, RecipeName, RunnerParams

DEFAULT_EVALUATION_SEED = 2024
DEFAULT_EVALUATION_SAMPLES = 500


class RetrainParams(CaptchaParams):
    """Parameters of the retrain flow: a captcha run, then the champion/challenger gate."""

    promotion_margin: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Sequence accuracy (0-1) by which the challenger must beat the champion on "
        "the evaluation set to replace it (and the gain must also be significant).",
    )
    significance: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Largest p-value of the one-sided exact McNemar test on per-image "
        "correctness that lets a challenger replace the champion: its gain must be more than "
        "chance on the evaluation set.",
    )
    evaluation_seed: int = Field(
        DEFAULT_EVALUATION_SEED,
        ge=0,
        description="Seed of the generated evaluation set (when no evaluation_dir is given); "
        "reserved: no training may use it.",
    )
    evaluation_samples: int = Field(
        DEFAULT_EVALUATION_SAMPLES,
        ge=10,
        le=100_000,
        description="Captchas in the generated evaluation set.",
    )
    evaluation_dir: AbsolutePath | None = Field(
        None,
        description="Held-out folder of <label>.png captchas that every model is compared on; "
        "required for the url and dir sources (real data). Default: a generated set.",
    )
    reseed_each_run: bool = Field(
        False,
        description="Draw a new seed for every run, so a scheduled retrain on synthetic data "
        "trains on new captchas instead of finding the last model in the cache.",
    )

    @model_validator(mode="after")
    def _check_evaluation(self) -> RetrainParams:
        if self.source != "synthetic" and self.evaluation_dir is None:
            raise ValueError(
                f"source {self.source!r} needs evaluation_dir: a held-out folder of real "
                "captchas that no model trains on"
            )
        if self.evaluation_dir is None and self.seed == self.evaluation_seed:
            raise ValueError(
                f"seed {self.seed} is the reserved evaluation_seed; train with another seed"
            )
        return self


@dataclass(frozen=True)
class SweepConfiguration:
    """One training of a sweep: a training seed, a peak learning rate (None: the recipe's), a recipe."""

    seed: int
    learning_rate: float | None
    recipe: str

    @property
    def name(self) -> str:
        rate = "default" if self.learning_rate is None else f"{self.learning_rate:g}"
        return f"{self.recipe} lr={rate} seed={self.seed}"


class SweepParams(RetrainParams, RunnerParams):
    """Parameters of the sweep flow: data prepared once, one training per configuration of
    `seeds` x `learning_rates` x `recipes`, the best handed to the registry's gate.

    `seed` drives the data (generation and split), shared by every configuration; `seeds` drive
    weight initialisation and shuffling. An empty list stands for the single value of `seed`,
    `learning_rate` or `recipe`.
    """

    seeds: Annotated[list[int], Distinct] = Field(
        default_factory=list,
        description="Training seeds (weight init, shuffling), crossed with the other lists. "
        "Default: seed.",
    )
    learning_rates: Annotated[list[float], Distinct] = Field(
        default_factory=list,
        description="Peak learning rates, crossed with the other lists. Default: learning_rate "
        "(or the recipe's).",
    )
    recipes: Annotated[list[RecipeName], Distinct] = Field(
        default_factory=list,
        description="Model recipes, crossed with the other lists. Default: recipe.",
    )

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if any(seed < 0 for seed in value):
            raise ValueError(f"seeds must be >= 0, got {value}")
        return value

    @field_validator("learning_rates")
    @classmethod
    def _learning_rates(cls, value: list[float]) -> list[float]:
        if any(not 0 < rate < 1 for rate in value):
            raise ValueError(f"learning rates must be between 0 and 1 (exclusive), got {value}")
        return value

    @model_validator(mode="after")
    def _check_sweep(self) -> SweepParams:
        if self.reseed_each_run:
            raise ValueError("reseed_each_run does not apply to a sweep; give the data seed")
        if len(self.configurations()) > 256:
            raise ValueError(f"{len(self.configurations())} configurations; at most 256 per sweep")
        return self

    def configurations(self) -> list[SweepConfiguration]:
        """seeds x learning_rates x recipes, in that nesting order (recipe varies slowest)."""
        return [SweepConfiguration(seed, rate, recipe)
                for recipe in self.recipes or [self.recipe]
                for rate in self.learning_rates or [self.learning_rate]
                for seed in self.seeds or [self.seed]]
