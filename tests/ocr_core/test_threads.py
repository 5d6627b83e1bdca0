import pytest

from ocr_core import threads


@pytest.mark.parametrize(("cpus", "concurrent", "expected"), [(2, 1, 2), (2, 2, 1), (2, 3, 1),
                                                              (16, 3, 5), (4, 0, 4)])
def test_threads_per_training_divides_the_cpus(monkeypatch, cpus, concurrent, expected):
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    assert threads.threads_per_training(concurrent) == expected
