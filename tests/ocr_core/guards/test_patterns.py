"""User patterns run on RE2: a pattern that backtracks for ages in `re` returns at once; what RE2
cannot run is refused when the parameters are validated, with the reason."""

import threading
import time

import pytest
from PIL import Image
from pydantic import ValidationError

from ocr_core.config import CaptchaParams, IngestParams
from ocr_core.data.validation import ImageSpec, validate_folder
from ocr_core.errors import ConfigError
from ocr_core.guards.patterns import MAX_PATTERN_LENGTH, compile_pattern

EVIL = "(a+)+$"
NAME = "a" * 39 + "!"  # 40 characters; Python's re tries 2**39 ways before it says no


def finishes_within(seconds: float, work) -> float:
    """Run `work` in a thread; fail unless it returns within `seconds`; its duration."""
    started = time.monotonic()
    worker = threading.Thread(target=work, daemon=True)  # a hung worker must not hang pytest
    worker.start()
    worker.join(seconds * 5)
    assert not worker.is_alive(), f"still running after {seconds * 5} s"
    elapsed = time.monotonic() - started
    assert elapsed < seconds
    return elapsed


class TestLinearTime:
    def test_a_catastrophic_pattern_returns_at_once(self):
        pattern = compile_pattern(EVIL)
        outcome = []
        finishes_within(1.0, lambda: outcome.append(pattern.fullmatch(NAME)))
        assert outcome == [False]
        assert pattern.fullmatch("a" * 40)

    def test_validating_a_folder_with_it_returns(self, tmp_path):
        Image.new("L", (20, 10)).save(tmp_path / f"{NAME}.png")
        Image.new("L", (20, 10), 255).save(tmp_path / f"{'a' * 40}.png")
        reports = []
        spec = ImageSpec(width=20, height=10, label_pattern=EVIL)
        finishes_within(2.0, lambda: reports.append(validate_folder(tmp_path, spec, "skip")))
        assert reports[0].accepted == [f"{'a' * 40}.png"]
        assert reports[0].problems == {f"{NAME}.png": [f"label {NAME!r} does not match {EVIL!r}"]}

    def test_a_name_that_is_not_valid_text_matches_nothing(self):
        assert not compile_pattern(".*").fullmatch("abc\udcffde")  # stray byte 0xff in a name


class TestRefused:
    @pytest.mark.parametrize(("pattern", "reason"), [
        (r"(a)\1", r"invalid escape sequence: \\1; RE2 has no backreferences"),
        ("(?=a)a", r"invalid perl operator: \(\?="),
        ("[abc", "missing ]"),
        (r"\d+\Z", r"spells \\Z as \\z"),
    ])
    def test_at_parameter_validation_with_the_reason(self, pattern, reason):
        for model in (CaptchaParams, IngestParams):
            extra = {"source_dir": "/in", "data_dir": "/out"} if model is IngestParams else {}
            with pytest.raises(ValidationError, match=rf"label_pattern .* is not a regular "
                                                      rf"expression RE2 accepts: .*{reason}"):
                model(label_pattern=pattern, **extra)
        with pytest.raises(ConfigError, match=reason):
            ImageSpec(label_pattern=pattern)

    def test_too_long(self):
        with pytest.raises(ConfigError, match=f"at most {MAX_PATTERN_LENGTH} are accepted"):
            compile_pattern("a" * (MAX_PATTERN_LENGTH + 1))

    def test_the_default_and_ordinary_patterns_are_accepted(self):
        assert CaptchaParams().label_pattern == "[2345678bcdefgmnpwxy]{5}"
        assert compile_pattern(r"[A-Z0-9]{4,6}").fullmatch("AB12")
        assert not compile_pattern(r"\d+").fullmatch("٣٤")  # RE2's \d is ASCII only, unlike re
        assert compile_pattern("é{2}").fullmatch("éé")
