"""User-given regular expressions (label patterns) run on RE2: matching takes linear time.

Python's `re` backtracks: `(a+)+$` against a 40-character name that almost matches takes longer
than the age of the universe, so a pattern typed into a run form could hang a worker. RE2 never
backtracks; what it gives up for that (backreferences, look-around) is refused when the
parameters are validated, with RE2's reason. Note RE2 spells Python's `\\Z` as `\\z`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

from ocr_core.errors import ConfigError

MAX_PATTERN_LENGTH = 1000
_MAX_PROGRAM_MEMORY = 8 << 20  # RE2's default; a pattern that needs more is refused


@dataclass(frozen=True)
class Pattern:
    """A compiled user pattern."""

    pattern: str
    compiled: Any  # re2's compiled expression (the module names no public type for it)

    def fullmatch(self, text: str) -> bool:
        """Whether all of `text` matches; a name that is not valid text (a file name's stray
        bytes, kept by Python as surrogates) matches nothing."""
        try:
            return self.compiled.fullmatch(text) is not None
        except UnicodeEncodeError:
            return False


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error comes back to the caller, not on stderr
    options.max_mem = _MAX_PROGRAM_MEMORY
    return options


def compile_pattern(pattern: str, parameter: str = "label_pattern") -> Pattern:
    """`pattern` compiled with RE2.

    Raises:
        ConfigError: naming `parameter`, the pattern and why it is refused (too long, or not an
            RE2 expression: a syntax error, a backreference, look-around, too large a program).
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"{parameter} is {len(pattern)} characters long; at most "
                          f"{MAX_PATTERN_LENGTH} are accepted")
    try:
        return Pattern(pattern, re2.compile(pattern, _options()))
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        hint = ("; RE2 has no backreferences or look-around, and spells \\Z as \\z"
                if "escape" in str(reason) or "perl operator" in str(reason) else "")
        raise ConfigError(f"{parameter} {pattern!r} is not a regular expression RE2 accepts: "
                          f"{reason}{hint}") from None


def check_pattern(pattern: str, parameter: str = "label_pattern") -> str:
    """`pattern` if `compile_pattern` accepts it (see there)."""
    compile_pattern(pattern, parameter)
    return pattern
