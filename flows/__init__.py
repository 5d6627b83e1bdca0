"""Prefect flows that compose the tasks, and the `ocr-pipeline` command line."""

from flows.environment import apply_process_defaults

apply_process_defaults()  # before anything imports Prefect, which reads its settings once
