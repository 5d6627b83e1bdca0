"""Prefect tasks over `ocr_core`: caching, retries, logging and artifacts; records, not objects."""

from tasks.storage import use_atomic_result_storage

use_atomic_result_storage()  # Prefect's result files: written to a temporary name, then renamed
