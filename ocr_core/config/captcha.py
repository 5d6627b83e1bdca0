"""Parameters of the captcha OCR flow: the data source, the checks, the split and the training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ocr_core.config.common import (
    ImageChecks,
    ImageSize,
    LabelPattern,
    Location,
    RecipeName,
    RunParams,
    TrackingParams,
    image_size_field,
    label_pattern_field,
)
from ocr_core.data.download import check_url
from ocr_core.errors import ConfigError

DEFAULT_CAPTCHA_URL = (
    "https://github.com/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"
)
DEFAULT_NUM_SAMPLES = 30_000


class CaptchaParams(ImageChecks, TrackingParams, RunParams):
    """Parameters of the captcha OCR flow."""

    source: Literal["synthetic", "url", "dir"] = Field(
        "synthetic",
        description="Where the captchas come from: generated here (synthetic), the published "
        "zip (url) or a local folder of <label>.png files (dir).",
    )
    num_samples: int | None = Field(
        None,
        ge=10,
        le=1_000_000,
        description=f"Captchas to generate; synthetic source only (default {DEFAULT_NUM_SAMPLES}).",
    )
    url: str = Field(
        DEFAULT_CAPTCHA_URL, description="Zip to download for the url source (http, https, file)."
    )
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Expected sha256 of the downloaded zip; checked when given.",
    )
    data_dir: Location | None = Field(
        None, description="Folder of <label>.png captchas (a path or a store URL such as "
        "s3://bucket/captchas); required for the dir source."
    )
    download_timeout: float = Field(
        60.0, gt=0, le=3600,
        description="Seconds to wait for the server to accept the connection or send more data.",
    )
    download_attempts: int = Field(
        5, ge=1, le=50,
        description="Download attempts in all (connection errors, timeouts, HTTP 5xx/429 retry).",
    )
    download_backoff: float = Field(
        1.0, ge=0, le=600,
        description="First retry delay in seconds; doubles each attempt, with jitter.",
    )
    download_max_mib: int = Field(
        64, ge=1, le=4096,
        description="Largest download in MiB (the published zip is 9 MB): a larger body is "
        "refused and nothing is kept.",
    )
    validation_policy: Literal["fail", "skip"] = Field(
        "fail",
        description="What a bad image (unreadable, wrong size or mode, bad label, duplicate) "
        "does: fail stops the run listing the files; skip leaves them out.",
    )
    label_pattern: LabelPattern = label_pattern_field()
    image_size: ImageSize = image_size_field()
    seed: int = Field(42, ge=0, description="Drives generation, the split and weight init.")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the images held out for early stopping."
    )
    test_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the images held out for the final evaluation."
    )
    recipe: RecipeName = Field(
        "crnn",
        description="Model recipe: crnn (batch-normalised CRNN on 128x32, fast on CPU) or "
        "keras_example (the keras.io captcha OCR example's CNN + BiLSTM on 200x50).",
    )
    epochs: int | None = Field(
        None, ge=1, le=1000,
        description="Maximum training epochs. Default: enough to see about 72,000 images "
        "(160,000 with augmentation), so the same command learns from any data size: 3 epochs "
        "of 24,000 generated training images (the main job), 210 of 762 augmented real ones "
        "(the 936 shared real captchas, about 80% of them for training).",
    )
    patience: int | None = Field(
        None, ge=1,
        description="Epochs without a better one (lower validation character error rate, ties "
        "broken by lower validation loss) before stopping; epochs in the first third are not "
        "considered. Default: a tenth of the epochs, at least 2 (2 for the main job, 21 for 762 "
        "augmented images).",
    )
    batch_size: int | None = Field(
        None, ge=1, le=4096,
        description="Batch size. Default: the recipe's (crnn 32), halved down to 16 until an "
        "epoch has at least 40 steps (16 for 762 images).",
    )
    learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Peak learning rate (default: the recipe's)."
    )
    augment: bool | None = Field(
        None,
        description="Distort each training image anew every epoch: a small shift, rotation, shear "
        "and scale, blur, thicker or thinner strokes, noise, contrast and brightness (default: on "
        "for the url and dir sources, whose real datasets are small; off for synthetic).",
    )
    min_val_accuracy: float = Field(
        0.5, ge=0, le=1,
        description="Learned-nothing guard: a best validation sequence accuracy (0-1) below this "
        "fails the run; the model is kept for inspection but never reported or registered.",
    )
    decoder: Literal["greedy", "beam_search"] = Field(
        "greedy", description="CTC decoding used for the evaluation and the prediction sample."
    )
    beam_width: int = Field(16, ge=1, le=512, description="Beam width for beam_search decoding.")

    @model_validator(mode="after")
    def _check_source(self) -> CaptchaParams:
        if self.source != "synthetic" and self.num_samples is not None:
            raise ValueError(
                f"num_samples belongs to the synthetic source; source is {self.source!r}"
            )
        if self.source == "dir" and self.data_dir is None:
            raise ValueError("source 'dir' needs data_dir (a folder of <label>.png files)")
        if self.source != "dir" and self.data_dir is not None:
            raise ValueError(f"data_dir belongs to the dir source; source is {self.source!r}")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "validation_fraction + test_fraction must leave at least 10% for training, got "
                f"{self.validation_fraction} + {self.test_fraction}"
            )
        return self

    @field_validator("url")
    @classmethod
    def _allowed_url(cls, value: str) -> str:
        try:
            return check_url(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    @property
    def use_augmentation(self) -> bool:
        """`augment`, or the source's default."""
        return self.augment if self.augment is not None else self.source != "synthetic"

    @property
    def sample_count(self) -> int:
        """Captchas to generate for the synthetic source."""
        return self.num_samples if self.num_samples is not None else DEFAULT_NUM_SAMPLES
