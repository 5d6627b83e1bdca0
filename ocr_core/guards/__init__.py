"""Checks on untrusted input: download targets, allowed roots, user patterns, vocabularies."""
