"""Typed run parameters: one object per flow for the CLI, the flow and the Prefect UI's run form.

One module per flow family, on shared annotated types (`common`); every model is importable
from here.
"""

from ocr_core.config.captcha import DEFAULT_CAPTCHA_URL, DEFAULT_NUM_SAMPLES, CaptchaParams
from ocr_core.config.common import (
    DASK_ADDRESS_PATTERN,
    AbsolutePath,
    ImageChecks,
    ImageSize,
    LabelPattern,
    Location,
    RecipeName,
    ResultsParams,
    RunnerParams,
    RunParams,
    TrackingParams,
    check_regular_expression,
)
from ocr_core.config.mnist import MNIST_MODELS, MnistModelName, MnistParams
from ocr_core.config.reading import PREDICTION_FORMATS, IngestParams, PredictParams
from ocr_core.config.retrain import (
    DEFAULT_EVALUATION_SAMPLES,
    DEFAULT_EVALUATION_SEED,
    RetrainParams,
    SweepConfiguration,
    SweepParams,
)
from ocr_core.layout import default_results_dir

__all__ = [
    "DASK_ADDRESS_PATTERN", "DEFAULT_CAPTCHA_URL", "DEFAULT_EVALUATION_SAMPLES",
    "DEFAULT_EVALUATION_SEED", "DEFAULT_NUM_SAMPLES", "MNIST_MODELS", "PREDICTION_FORMATS",
    "AbsolutePath", "Location", "CaptchaParams", "ImageChecks", "ImageSize", "IngestParams", "LabelPattern",
    "MnistModelName", "MnistParams", "PredictParams", "RecipeName", "ResultsParams",
    "RetrainParams", "RunParams", "RunnerParams", "SweepConfiguration", "SweepParams",
    "TrackingParams",
    "check_regular_expression", "default_results_dir",
]
