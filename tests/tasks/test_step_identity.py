"""One key per step: the key inside the step is its cache key (code identity: test_code_identity.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.caching import current_step_key, keyed_step

ROOT = Path("/results")


class TestOneKey:
    def test_the_key_inside_the_step_is_its_cache_key(self):
        seen = []

        @keyed_step(ignore=("threads",))
        def step(size: int, results_dir: Path, threads: int | None = None) -> None:
            seen.append(current_step_key())

        step(3, ROOT, threads=2)
        assert seen == [step.step_key({"size": 3, "results_dir": ROOT})]
        assert step.step_key({"size": 3, "results_dir": ROOT, "threads": 7}) == seen[0]
        assert step.step_key({"size": 4, "results_dir": ROOT}) != seen[0]

    def test_outside_a_step_there_is_no_key(self):
        with pytest.raises(RuntimeError, match="keyed_step"):
            current_step_key()
