"""Allowed roots: the folders a served flow run may read and write, and the check of every path.

A flow run started by the Prefect server (a deployment's form, an automation, a schedule) takes
its parameters from whoever can reach the server, so its paths are confined: each one, after
symbolic links are resolved, must lie under one of the allowed roots, and the results root must be
the one the deployment was served with. Local CLI runs are not confined. The roots are the
served results root and the folders in `$OCR_PIPELINE_ALLOWED_ROOTS` (separated by `os.pathsep`);
`ocr-pipeline serve` sets that to the folders it was given unless the administrator set it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import BaseModel

from ocr_core.errors import ConfigError
from ocr_core.layout import default_results_dir

ALLOWED_ROOTS_ENV = "OCR_PIPELINE_ALLOWED_ROOTS"


def allowed_roots(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The allowed roots, resolved: the served results root, then `$OCR_PIPELINE_ALLOWED_ROOTS`."""
    given = [Path(part).expanduser() for part in environ.get(ALLOWED_ROOTS_ENV, "").split(os.pathsep)
             if part.strip()]
    roots = [default_results_dir(), *given]
    return list(dict.fromkeys(root.absolute().resolve() for root in roots))


def roots_setting(folders: list[Path]) -> str:
    """`folders` as a value of `$OCR_PIPELINE_ALLOWED_ROOTS` (resolved, without repeats)."""
    resolved = dict.fromkeys(str(Path(f).expanduser().absolute().resolve()) for f in folders)
    return os.pathsep.join(resolved)


def check_under_roots(path: str | Path, roots: list[Path], parameter: str) -> Path:
    """`path` resolved (symbolic links followed) if it lies under one of `roots`.

    Raises:
        ConfigError: naming the parameter, the path and the allowed roots.
    """
    resolved = Path(path).expanduser().absolute().resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    shown = os.pathsep.join(str(root) for root in roots)
    raise ConfigError(
        f"{parameter}={path} is outside the allowed roots of a served run ({shown}); "
        f"an administrator can widen them with {ALLOWED_ROOTS_ENV} on the serving process")


def path_parameters(params: BaseModel, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """Every path in `params` as (parameter name, path): Path fields, lists of them, nested models."""
    for name in type(params).model_fields:
        value = getattr(params, name)
        label = f"{prefix}{name}"
        if isinstance(value, Path):
            yield label, value
        elif isinstance(value, BaseModel):
            yield from path_parameters(value, f"{label}.")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Path):
                    yield f"{label}[{index}]", item


def check_served_paths(params: BaseModel, roots: list[Path] | None = None,
                       results_root: Path | None = None) -> None:
    """Refuse a served run's parameters unless every path lies under the allowed roots and the
    results root (if the model has one) is the served one.

    Args:
        params: the run's parameters (any model; every Path field is checked).
        roots: the allowed roots (default: `allowed_roots()`).
        results_root: the results root the deployment was served with (default:
            `$OCR_PIPELINE_RESULTS` of this process, which `serve` and the worker pass on).

    Raises:
        ConfigError: for the first path outside, before any work is done.
    """
    roots = allowed_roots() if roots is None else roots
    served_root = (results_root or default_results_dir()).absolute().resolve()
    results_dir = getattr(params, "results_dir", None)
    if isinstance(results_dir, Path) and results_dir.absolute().resolve() != served_root:
        raise ConfigError(
            f"results_dir={results_dir} is not this deployment's results root ({served_root}): a "
            "served run writes under the root it was served with")
    for parameter, path in path_parameters(params):
        check_under_roots(path, roots, parameter)
