"""Store failures as one-line errors that name what to fix (credentials, bucket, access)."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from ocr_core.errors import OcrPipelineError


class StorageError(OcrPipelineError):
    """The results store cannot be reached or used: no credentials, no bucket, access denied."""

    exit_code = 7


class LockTimeout(TimeoutError):
    """A lock stayed held by another holder for longer than the caller would wait."""


class StorageConflict(Exception):
    """A conditional write lost: the object changed (or appeared) since it was read."""


_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError")


@contextlib.contextmanager
def translated(location: str, package: str | None = None) -> Iterator[None]:
    """Turn a store client's exceptions inside the block into StorageError naming `location`
    (FileNotFoundError and FileExistsError pass: callers decide what absence means)."""
    try:
        yield
    except ImportError as error:
        name = package or getattr(error, "name", None) or "the store's fsspec package"
        raise StorageError(f"{location} needs the package {name}: pip install {name}") from None
    except (FileNotFoundError, FileExistsError) as error:
        if is_missing_bucket(error):
            raise StorageError(f"no such bucket for {location}: create it first") from None
        raise
    except PermissionError:
        raise StorageError(f"access denied to {location}: check the credentials' permissions "
                           "for this bucket and prefix") from None
    except OSError as error:
        # s3fs: a failed condition, or an object replaced between reading its ETag and its bytes
        if _code(error) == "PreconditionFailed" or error.errno == errno.EBUSY:
            raise StorageConflict(f"{location} changed since it was read") from None
        raise StorageError(f"{location}: {error}") from None
    except Exception as error:
        if type(error).__name__ in _CREDENTIALS:
            raise StorageError(
                f"no credentials for {location}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 for a server other than AWS)"
            ) from None
        if type(error).__name__ in ("EndpointConnectionError", "ConnectTimeoutError",
                                    "ClientConnectorError"):
            raise StorageError(f"cannot reach the store for {location}: {error}") from None
        raise


def is_missing_bucket(error: BaseException) -> bool:
    """Whether a store client's FileNotFoundError says the bucket itself is missing (s3fs's
    message), not a key: a listing that swallows absence must still let this one through."""
    return isinstance(error, FileNotFoundError) and "bucket does not exist" in str(error)


def _code(error: BaseException) -> str:
    cause = error.__cause__
    response = getattr(cause, "response", None) or {}
    return response.get("Error", {}).get("Code", "")
