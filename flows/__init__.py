"""Prefect flows that compose the tasks, and the `ocr-pipeline` command line."""
