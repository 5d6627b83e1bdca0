"""The project's exceptions: each names the offending value and carries a CLI exit code."""

from __future__ import annotations


class OcrPipelineError(Exception):
    """Base class: a problem the user can fix, reported as one line without a traceback."""

    exit_code = 1


class ConfigError(OcrPipelineError):
    """A parameter is invalid or parameters contradict each other."""

    exit_code = 2


class DataError(OcrPipelineError):
    """Input data is missing, unreadable or not what it claims to be."""

    exit_code = 3


class DownloadError(DataError):
    """A download failed for good (after retries) or its content did not verify."""


class UnsafeArchiveError(DataError):
    """An archive entry would escape the target folder or the archive is a decompression bomb."""


class ModelError(OcrPipelineError):
    """A model bundle is missing, incomplete or unreadable."""

    exit_code = 4


class RegistryError(OcrPipelineError):
    """The model registry has no such version or no champion, a registered version's files
    changed, or the registry stayed locked too long."""

    exit_code = 5


class TrainingError(OcrPipelineError):
    """Training produced a model that must not be used: it learned too little."""

    exit_code = 6
