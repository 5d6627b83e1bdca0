"""Prefect tasks over `ocr_core`: caching, retries, logging and artifacts; records, not objects.

Importing the package changes nothing in the process (no settings, no patching): process
defaults are the entry point's job (`flows.environment.apply_process_defaults`).
"""
