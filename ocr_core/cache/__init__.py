"""The results root's cache: one lock per step key, listing and collecting old keys."""
