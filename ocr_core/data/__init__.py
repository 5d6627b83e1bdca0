"""Data in: downloads, safe unzip, validation, the index and the split, ingest."""
