from tasks.report import prediction_sample


def _rows(flags):
    return [{"text": "x" if right else "y", "truth": "x"} for right in flags]


def test_misreads_come_first_but_fill_at_most_half():
    rows = _rows([True] * 30 + [False] * 20)
    sample = prediction_sample(rows, count=16)
    assert len(sample) == 16
    assert sum(rows[i]["text"] != rows[i]["truth"] for i in sample) == 8
    assert sample == sorted(sample)


def test_small_or_perfect_sets():
    assert prediction_sample(_rows([True] * 5), count=16) == [0, 1, 2, 3, 4]
    assert prediction_sample(_rows([False, True, False]), count=16) == [0, 1, 2]
