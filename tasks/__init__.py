"""Prefect tasks over `ocr_core`: caching, retries, logging and artifacts; records, not objects."""
