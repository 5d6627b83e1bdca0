"""What a served predict run naming a Dask scheduler costs: the checks at main (paths only) vs
today's (paths, then the served cluster and limits), in one process, against a TCP listener on
127.0.0.1 that records when something connects.

    .venv/bin/python bench/served_refusal.py --out bench/served_refusal.json

The run is a deployment's run as Prefect's runtime sees it (`PREFECT__RUNTIME__DEPLOYMENT__ID`),
on a temporary Prefect server (`prefect_test_harness`); "paths only" replaces the new checks with
nothing, as the code at main had.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path


def listen() -> tuple[socket.socket, list[float]]:
    """A loopback listener and the times (perf_counter) of the connections it accepted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[float] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(time.perf_counter())
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, accepted


def attempt(checks: str, root: Path) -> dict[str, object]:
    import tasks.served
    from flows.predict import captcha_predict
    from ocr_core.config import PredictParams

    server, accepted = listen()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    saved = tasks.served.check_served_limits, tasks.served.start_time_budget
    if checks == "paths only (main)":
        tasks.served.check_served_limits = lambda params, limits: None
        tasks.served.start_time_budget = lambda minutes: None
    params = PredictParams(results_dir=root, inputs=[root], output=root / "p.csv",
                           dask_address=address)
    start = time.perf_counter()
    try:
        captcha_predict(params)
        outcome = "completed"
    except Exception as error:  # what the run ended with is the measurement
        outcome = f"{type(error).__name__}: {str(error)[:160]}"
    finally:
        tasks.served.check_served_limits, tasks.served.start_time_budget = saved
        seconds = time.perf_counter() - start
        server.close()
    return {"checks": checks, "seconds_to_failure": round(seconds, 2), "outcome": outcome,
            "connections": len(accepted),
            "first_connection_after_s": round(accepted[0] - start, 2) if accepted else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="served-refusal-")) / "results"
    os.environ.update({"PREFECT__RUNTIME__DEPLOYMENT__ID": str(uuid.uuid4()),
                       "OCR_PIPELINE_RESULTS": str(root), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    from prefect.logging import disable_run_logger
    from prefect.testing.utilities import prefect_test_harness

    from tasks.served_limits import ServedLimits, check_served_limits

    with prefect_test_harness(server_startup_timeout=120), disable_run_logger():
        attempt("paths, cluster and limits (now)", root)  # warm-up: imports, first flow run
        rows = [attempt(checks, root) for checks in
                ("paths, cluster and limits (now)", "paths only (main)")]
    params_check = timed_check(check_served_limits, ServedLimits())
    report = {"machine": f"{platform.node()} {os.cpu_count()} CPUs (shared, loaded)",
              "runs": rows, "check_served_limits_microseconds": params_check}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def timed_check(check, limits) -> float:
    """Microseconds per `check_served_limits` call on a sweep's parameters (median of 5 x 1000)."""
    from ocr_core.config import SweepParams

    params = SweepParams(dask_workers=2, epochs=10)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(1000):
            check(params, limits)
        rounds.append((time.perf_counter() - start) * 1000)
    return round(sorted(rounds)[2], 1)


if __name__ == "__main__":
    main()
