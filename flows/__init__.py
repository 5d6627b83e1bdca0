"""Prefect flows that compose the tasks, and the `ocr-pipeline` command line.

Importing the package changes nothing in the process; the CLI, `serve` and the Dask worker
preload apply the process defaults (`flows.environment.apply_process_defaults`), and a program
that runs the flows itself calls that first.
"""
