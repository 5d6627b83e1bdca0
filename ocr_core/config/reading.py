"""Parameters of the flows that take captchas in and read them: ingest and predict."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, field_validator

from ocr_core.config.common import (
    AbsolutePath,
    ImageChecks,
    ImageSize,
    LabelPattern,
    Location,
    ResultsParams,
    RunnerParams,
    RunParams,
    image_size_field,
    label_pattern_field,
)


class IngestParams(ImageChecks, RunParams):
    """Parameters of the ingest flow: move checked `<label>.png` captchas into a dataset folder."""

    source_dir: AbsolutePath = Field(
        description="Folder of new <label>.png captchas (e.g. a corrected review queue); "
        "accepted files are moved out of it, refused ones stay."
    )
    data_dir: AbsolutePath = Field(
        description="The dataset folder to add them to (the retrain deployment's data_dir)."
    )
    label_pattern: LabelPattern = label_pattern_field()
    image_size: ImageSize = image_size_field()


PREDICTION_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
"""Results file formats of the predict flow, by the output file's suffix."""


class PredictParams(ResultsParams, RunnerParams):
    """Parameters of the predict flow: read folders of captchas in shards into one results file."""

    inputs: list[Location] = Field(
        min_length=1,
        description="PNG files and folders of PNGs to read: paths (on Dask: paths every worker "
        "sees) or store URLs (s3://bucket/incoming).",
    )
    output: Location = Field(
        description="The results file, written once all shards are read: .csv (path,text,"
        "confidence) or .jsonl (one JSON object per image); a path or a store URL "
        "(s3://bucket/out/predictions.csv). Replaced whole if it exists.",
    )
    model: Location | None = Field(
        None,
        description="Model bundle folder (or its model.keras): a path or a store URL "
        "(s3://...). Default: the registry's champion.",
    )
    decoder: Literal["greedy", "beam_search"] = Field("greedy", description="CTC decoding.")
    beam_width: int = Field(16, ge=1, le=512, description="Beams kept by beam_search.")
    shard_size: int = Field(
        5000, ge=1, le=1_000_000,
        description="Images per shard: each shard is one task run, on whichever worker is free.",
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Images per model call.")

    @field_validator("output")
    @classmethod
    def _results_file(cls, value: str) -> str:
        if PurePosixPath(value).suffix.lower() not in PREDICTION_FORMATS:
            raise ValueError(f"{value} must end in .csv or .jsonl (the results file's format)")
        return value

    @property
    def output_format(self) -> Literal["csv", "jsonl"]:
        """csv or jsonl, from the output file's suffix."""
        suffix = PurePosixPath(self.output).suffix.lower()
        return PREDICTION_FORMATS[suffix]  # type: ignore[return-value]
