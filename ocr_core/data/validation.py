"""Check a folder of `<label>.png` captchas before training, like TFX's ExampleValidator.

Every image must decode as a PNG of the expected size and an accepted mode (L, RGB or RGBA; the
pipeline reads one grey channel from each), its label must match the expected pattern and hold
only characters a model's vocabulary can (`ocr_core.guards.characters`: no dot, separator or control
character, whatever the pattern allows), and no two
files may hold the same bytes (a duplicate could land in both the training and the test split).
The report counts characters, label lengths, modes and sizes, and lists each rejected file with
its problems. The policy decides what a problem does: `fail` stops, `skip` leaves the file out.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from ocr_core.captcha.synthetic import CAPTCHA_ALPHABET, IMAGE_HEIGHT, IMAGE_WIDTH, LABEL_LENGTH
from ocr_core.data.dataset import label_of, list_pngs
from ocr_core.errors import ConfigError, DataError
from ocr_core.files import sha256_file
from ocr_core.guards.characters import vocabulary_problem
from ocr_core.guards.patterns import compile_pattern

Policy = Literal["fail", "skip"]
POLICIES: tuple[Policy, ...] = ("fail", "skip")
DEFAULT_LABEL_PATTERN = f"[{CAPTCHA_ALPHABET}]{{{LABEL_LENGTH}}}"
_LISTED_IN_ERRORS = 10
_READ_WHOLE = 16 * 2**20  # files up to this size are read once for both the hash and the decode


@dataclass(frozen=True)
class ImageSpec:
    """What every captcha must be: its size in pixels, its PIL mode and its label's pattern."""

    width: int = IMAGE_WIDTH
    height: int = IMAGE_HEIGHT
    modes: tuple[str, ...] = ("L", "RGB", "RGBA")
    label_pattern: str = DEFAULT_LABEL_PATTERN

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"image size must be positive, got {self.width}x{self.height}")
        compile_pattern(self.label_pattern)


@dataclass
class ValidationReport:
    """The outcome of checking a folder; `problems` maps a rejected file's name to its problems."""

    folder: str
    spec: ImageSpec
    checked: int
    accepted: list[str]
    problems: dict[str, list[str]]
    problem_counts: dict[str, int]
    duplicates: list[list[str]]
    character_counts: dict[str, int]
    label_lengths: dict[int, int]
    modes: dict[str, int]
    sizes: dict[str, int]
    policy: Policy = "fail"
    # sha256 of each readable file's bytes, computed once here for the index (not in the report)
    digests: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def rejected(self) -> list[str]:
        return sorted(self.problems)

    def accepted_paths(self) -> list[Path]:
        return [Path(self.folder) / name for name in self.accepted]

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self) | {"rejected": self.rejected}
        del report["digests"]
        return report

    def summary(self) -> str:
        return (f"checked {self.checked} images in {self.folder}: {len(self.accepted)} accepted, "
                f"{len(self.problems)} rejected (policy {self.policy})")


def validate_folder(folder: str | Path, spec: ImageSpec | None = None,
                    policy: Policy = "fail") -> ValidationReport:
    """Check every PNG directly in `folder` against `spec`; collect statistics.

    Statistics (characters, label lengths) describe the accepted images: what training would see.

    Raises:
        DataError: `folder` is missing or holds no PNG file.
        ConfigError: unknown policy.
    """
    spec = spec or ImageSpec()
    if policy not in POLICIES:
        raise ConfigError(f"validation policy must be one of {POLICIES}, got {policy!r}")
    paths = list_pngs(folder)
    problems: dict[str, list[str]] = defaultdict(list)
    kinds: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    by_digest: dict[str, list[str]] = defaultdict(list)
    digests: dict[str, str] = {}
    label_pattern = compile_pattern(spec.label_pattern)
    # Reading, hashing and decoding release the GIL: threads keep every core busy (Python's
    # default pool size; ocr_core.threads would tie validation's cache key to TensorFlow).
    with ThreadPoolExecutor() as pool:
        inspections = pool.map(lambda path: _inspect(path, spec), paths)
        for path, inspection in zip(paths, inspections, strict=True):
            for kind, message in inspection.problems:
                problems[path.name].append(message)
                kinds[kind] += 1
            if inspection.mode:
                modes[inspection.mode] += 1
                sizes[inspection.size] += 1
            if inspection.sha256:
                digests[path.name] = inspection.sha256
                by_digest[inspection.sha256].append(path.name)
            label = label_of(path)
            unusable = "".join(sorted({c for c in label if vocabulary_problem(c)}))
            if not label_pattern.fullmatch(label):
                problems[path.name].append(f"label {label!r} does not match {spec.label_pattern!r}")
                kinds["label"] += 1
            elif unusable:
                problems[path.name].append(f"label {label!r} has {unusable!r}, which a model's "
                                           "vocabulary cannot hold (predictions become file names)")
                kinds["label"] += 1
    duplicates = [names for names in by_digest.values() if len(names) > 1]
    for first, *copies in duplicates:
        for name in copies:
            problems[name].append(f"same bytes as {first}")
            kinds["duplicate"] += 1
    accepted = [p.name for p in paths if p.name not in problems]
    labels = [label_of(name) for name in accepted]
    return ValidationReport(
        folder=str(Path(folder).absolute()),
        spec=spec,
        checked=len(paths),
        accepted=accepted,
        problems=dict(problems),
        problem_counts=dict(kinds),
        duplicates=duplicates,
        character_counts=dict(sorted(Counter("".join(labels)).items())),
        label_lengths=dict(sorted(Counter(len(label) for label in labels).items())),
        modes=dict(modes),
        sizes=dict(sizes),
        policy=policy,
        digests={name: digests[name] for name in accepted},
    )


@dataclass(frozen=True)
class _Inspection:
    """One file read once: its problems as (kind, message), its mode and size when its header
    reads, and the sha256 of its bytes ("" when they could not be read)."""

    problems: list[tuple[str, str]]
    mode: str = ""
    size: str = ""
    sha256: str = ""


def _inspect(path: Path, spec: ImageSpec) -> _Inspection:
    """Read a file's bytes once, hash them and decode them (small files from memory)."""
    try:
        data = path.read_bytes() if path.stat().st_size <= _READ_WHOLE else None
        digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
    except OSError as error:
        return _Inspection([("corrupt", f"not a readable file ({error})")])
    mode = size = ""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            mode, size = image.mode, f"{image.width}x{image.height}"
            found = []
            if image.format != "PNG":
                found.append(("format", f"a {image.format} file, not a PNG"))
            if image.size != (spec.width, spec.height):
                found.append(("size", f"size {image.width}x{image.height}, expected "
                                      f"{spec.width}x{spec.height}"))
            if image.mode not in spec.modes:
                found.append(("mode", f"mode {image.mode}, expected one of "
                                      f"{', '.join(spec.modes)}"))
            if not found:
                image.load()  # decodes every pixel: catches truncated and corrupt data
            return _Inspection(found, mode, size, digest)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return _Inspection([("corrupt", f"not a readable image ({error})")], mode, size, digest)


def enforce(report: ValidationReport, report_path: str | Path | None = None) -> list[Path]:
    """The accepted files under the report's policy.

    Raises:
        DataError: policy `fail` and some file has a problem (the first few are listed), or
            nothing is left to train on.
    """
    where = f" (report: {report_path})" if report_path else ""
    if report.problems and report.policy == "fail":
        listed = "; ".join(f"{name}: {', '.join(report.problems[name])}"
                           for name in report.rejected[:_LISTED_IN_ERRORS])
        more = len(report.problems) - _LISTED_IN_ERRORS
        raise DataError(
            f"{len(report.problems)} of {report.checked} images in {report.folder} failed "
            f"validation: {listed}" + (f"; and {more} more" if more > 0 else "")
            + f"{where}. Fix or remove them, or use validation_policy 'skip' to leave them out.")
    if not report.accepted:
        raise DataError(f"no image in {report.folder} passed validation{where}")
    return report.accepted_paths()


def report_markdown(report: ValidationReport, max_rows: int = 50) -> str:
    """The report as markdown, for a Prefect artifact and a file beside the JSON."""
    spec = report.spec
    lines = [
        "# Captcha data validation",
        "",
        f"{report.summary().capitalize()}.",
        "",
        f"Expected: {spec.width}x{spec.height} PNG, mode {' / '.join(spec.modes)}, label "
        f"`{spec.label_pattern}`.",
        "",
    ]
    if report.problem_counts:
        lines += ["| problem | files |", "|---|---|"]
        lines += [f"| {kind} | {count} |" for kind, count in sorted(report.problem_counts.items())]
        lines += ["", "## Rejected files", "", "| file | problems |", "|---|---|"]
        lines += [f"| {name} | {'; '.join(report.problems[name])} |"
                  for name in report.rejected[:max_rows]]
        if len(report.problems) > max_rows:
            lines.append(f"| ... | {len(report.problems) - max_rows} more in the JSON report |")
        lines.append("")
    lines += ["## Label lengths", "", "| length | images |", "|---|---|"]
    lines += [f"| {length} | {count} |" for length, count in report.label_lengths.items()]
    lines += ["", "## Characters", "", "| character | count |", "|---|---|"]
    lines += [f"| `{char}` | {count} |" for char, count in report.character_counts.items()]
    lines += ["", "## Modes and sizes (all readable files)", "", "| value | files |", "|---|---|"]
    lines += [f"| {value} | {count} |"
              for value, count in {**report.modes, **report.sizes}.items()]
    return "\n".join(lines) + "\n"
