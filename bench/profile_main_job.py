"""Where the main job's seconds go: one table of its phases, with raw JSON.

Runs `ocr-pipeline captcha` (the main job, `make captcha`) of a checkout on a fresh results root,
optionally from a fresh clone with its set-up timed, optionally again on the same root (the cached
rerun), and optionally reads captchas of an unseen seed with the model it trained. The command
runs in the checkout's own `.venv` through a small driver (this file with `--driver`) that times,
without changing the product's code: the process start, the Prefect server start, every task run
(and its final state), each epoch's training batches, Keras's validation pass and the epoch-end
callbacks one by one, and the exit. The hooks are on Prefect's and Keras's own functions, so an
older checkout (`--ref`) is profiled the same way.

    # a commit of this repository from a fresh clone, set-up included, then the rerun and
    # 1,000 captchas of an unseen seed read with the model it trained
    python3 bench/profile_main_job.py --fresh-clone --commit fb2c81f --rerun \
        --unseen-seed 31337 90210 --unseen-count 1000 --out bench/profile-before.json
    python3 bench/profile_main_job.py --fresh-clone --rerun \
        --unseen-seed 31337 90210 --unseen-count 1000 --out bench/profile-after.json
    python3 bench/profile_main_job.py --table bench/profile-before.json bench/profile-after.json

`--ref PATH` profiles another checkout (its HEAD with `--fresh-clone`, else its own `.venv`).

Without `--fresh-clone` the checkout's existing `.venv` runs it (set-up not timed). Only the
standard library is used here; the driver runs in the checkout's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]


# ---------------------------------------------------------------- the driver (inside the checkout)

def run_driver(events_path: str, cli_args: list[str]) -> None:
    """Run `ocr-pipeline CLI_ARGS` in this process with timing hooks; write the events at exit."""
    import atexit
    import importlib.abc
    import importlib.util
    import logging
    import threading

    events: list[dict] = [{"event": "process_start", "t": time.time()}]

    def record(event: str, **fields) -> None:
        events.append({"event": event, "t": time.time(), "thread": threading.current_thread().name,
                       **fields})

    def dump() -> None:
        record("exit", tensorflow_loaded="tensorflow" in sys.modules)
        Path(events_path).write_text(json.dumps(events))

    atexit.register(dump)  # registered first, so it runs last (after Prefect stops its server)

    def timed(name: str, function, **fields):
        def wrapper(*args, **kwargs):
            record(f"{name}_begin", **fields)
            try:
                return function(*args, **kwargs)
            finally:
                record(f"{name}_end", **fields)
        return wrapper

    def hook_task_engine(module) -> None:
        original = module.run_task_sync

        def run_task_sync(task, *args, **kwargs):
            record("task_begin", task=task.name)
            try:
                return original(task, *args, **kwargs)
            finally:
                record("task_end", task=task.name)
        module.run_task_sync = run_task_sync

    def hook_flow_engine(module) -> None:
        module.run_flow_sync = timed("flow", module.run_flow_sync)

    def hook_server(module) -> None:
        cls = module.SubprocessASGIServer
        original = cls.start

        def start(self, *args, **kwargs):
            if self.running:
                return original(self, *args, **kwargs)
            record("server_start_begin")
            try:
                return original(self, *args, **kwargs)
            finally:
                record("server_start_end")
        cls.start = start

    def hook_callbacks(module) -> None:
        cls = module.CallbackList
        for name in ("on_train_begin", "on_epoch_begin", "on_test_begin", "on_test_end",
                     "on_train_end"):
            original = getattr(cls, name)

            def method(self, *args, _original=original, _name=name, **kwargs):
                record(f"keras_{_name}", epoch=args[0] if _name == "on_epoch_begin" else None)
                return _original(self, *args, **kwargs)
            setattr(cls, name, method)
        original_end = cls.on_epoch_end

        def on_epoch_end(self, epoch, logs=None):
            record("keras_on_epoch_end", epoch=epoch)
            # the same as Keras's, timing each callback (the first call flushes async work)
            callbacks, self.callbacks = self.callbacks, []
            try:
                original_end(self, epoch, logs)
            finally:
                self.callbacks = callbacks
            logs = module.python_utils.pythonify_logs(logs)
            for callback in callbacks:
                start = time.time()
                callback.on_epoch_end(epoch, logs)
                events.append({"event": "callback", "t": start, "seconds": time.time() - start,
                               "callback": type(callback).__name__, "epoch": epoch})
            record("keras_on_epoch_end_done", epoch=epoch,
                   logs={k: v for k, v in logs.items() if isinstance(v, int | float)})
        cls.on_epoch_end = on_epoch_end

    def hook_local_server(module) -> None:  # this project's early server start, where it exists
        for cls in (module.LocalServer, getattr(module, "KeptServer", None)):  # start or attach
            if cls is not None:
                cls.__init__ = timed("local_server_spawn", cls.__init__)
        module.LocalServer.wait = timed("local_server_wait", module.LocalServer.wait)

    hooks = {"prefect.task_engine": hook_task_engine, "prefect.flow_engine": hook_flow_engine,
             "prefect.server.api.server": hook_server,
             "keras.src.callbacks.callback_list": hook_callbacks,
             "flows.local_server": hook_local_server,
             "tensorflow": lambda module: record("tensorflow_imported"),
             "keras": lambda module: record("tensorflow_imported")}

    class AfterImport(importlib.abc.MetaPathFinder):
        """Runs a hook on a module right after it is first executed."""

        def find_spec(self, name, path, target=None):
            if name not in hooks:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            execute, hook = spec.loader.exec_module, hooks[name]

            def exec_module(module):
                execute(module)
                hook(module)
            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, AfterImport())

    call_handlers = logging.Logger.callHandlers

    def collect(self, log: logging.LogRecord) -> None:
        # every record a logger passes on, whatever handlers Prefect's logging set-up installs
        if log.levelno >= logging.INFO:
            events.append({"event": "log", "t": log.created, "logger": log.name,
                           "task": getattr(log, "task_run_name", None),
                           "message": log.getMessage()[:300]})
        call_handlers(self, log)

    logging.Logger.callHandlers = collect

    record("cli_start")
    from flows.cli import main

    main(cli_args, prog_name="ocr-pipeline")


# ---------------------------------------------------------------- phases from the events

def task_base(name: str) -> str:
    """A task run's name without Prefect's run suffix ("train_model-7a2" -> "train_model")."""
    return re.sub(r"-[0-9a-f]{3}$", "", name or "")


def phases(events: list[dict], spawned: float, ended: float) -> dict:
    """The phases of one command: seconds from the start of the process, per step and epoch."""
    first = {}
    for event in events:
        first.setdefault(event["event"], event["t"])
    states = {}
    for event in events:
        if event["event"] == "log" and event["message"].startswith("Finished in state"):
            states[task_base(event["task"]) if event["task"] else "flow"] = (
                event["message"].removeprefix("Finished in state ").split("(")[0])
    tasks: dict[str, dict] = {}
    for event in events:
        if event["event"] in ("task_begin", "task_end"):
            item = tasks.setdefault(event["task"], {"begin": None, "end": None, "runs": 0})
            if event["event"] == "task_begin":
                item["runs"] += 1
                item["begin"] = event["t"] if item["begin"] is None else min(item["begin"],
                                                                             event["t"])
            else:
                item["end"] = max(item["end"] or 0, event["t"])
    steps = [{"step": name, "runs": item["runs"], "seconds": round(item["end"] - item["begin"], 2),
              "from_s": round(item["begin"] - spawned, 2), "state": states.get(name, "")}
             for name, item in tasks.items() if item["begin"] and item["end"]]
    epochs = []
    begins = [e for e in events if e["event"] == "keras_on_epoch_begin"]
    for begin in begins:
        epoch = begin["epoch"]
        after = [e for e in events if e["t"] >= begin["t"]]
        test_begin = next((e["t"] for e in after if e["event"] == "keras_on_test_begin"), None)
        test_end = next((e["t"] for e in after if e["event"] == "keras_on_test_end"), None)
        end = next(e for e in after if e["event"] == "keras_on_epoch_end" and e["epoch"] == epoch)
        done = next(e for e in after
                    if e["event"] == "keras_on_epoch_end_done" and e["epoch"] == epoch)
        if test_begin is not None and test_begin > end["t"]:
            test_begin = test_end = None
        callbacks = {e["callback"]: round(e["seconds"], 3) for e in events
                     if e["event"] == "callback" and e["epoch"] == epoch}
        epochs.append({
            "epoch": epoch + 1,
            "train_s": round((test_begin or end["t"]) - begin["t"], 2),
            "keras_validation_s": round(test_end - test_begin, 2) if test_begin else 0.0,
            "epoch_end_callbacks_s": round(done["t"] - end["t"], 2),
            "callbacks_s": callbacks,
            "logs": done.get("logs", {}),
        })
    server = (round(first["server_start_end"] - first["server_start_begin"], 2)
              if "server_start_begin" in first and "server_start_end" in first else None)
    if "local_server_spawn_begin" in first:  # started early: from its spawn to answering
        server = round(first["local_server_wait_end"] - first["local_server_spawn_begin"], 2)
        first["server_start_begin"] = first["local_server_spawn_begin"]
    flow_begin = first.get("flow_begin")
    flow_end = max((e["t"] for e in events if e["event"] == "flow_end"), default=None)
    exit_at = max((e["t"] for e in events if e["event"] == "exit"), default=ended)
    return {
        "wall_s": round(ended - spawned, 2),
        "process_start_s": round(first["process_start"] - spawned, 2),
        "to_flow_call_s": round(flow_begin - spawned, 2) if flow_begin else None,
        "server_start_s": server,
        "server_wait_s": (round(first["local_server_wait_end"] - first["local_server_wait_begin"], 2)
                          if "local_server_wait_begin" in first else server),
        "tensorflow_imported_s": (round(first["tensorflow_imported"] - spawned, 2)
                                  if "tensorflow_imported" in first else None),
        "server_start_from_s": (round(first["server_start_begin"] - spawned, 2)
                                if "server_start_begin" in first else None),
        "flow_s": round(flow_end - flow_begin, 2) if flow_begin and flow_end else None,
        "after_flow_s": round(exit_at - flow_end, 2) if flow_end else None,
        "exit_s": round(ended - exit_at, 2),
        "tensorflow_loaded": next((e.get("tensorflow_loaded") for e in events
                                   if e["event"] == "exit"), None),
        "steps": steps,
        "epochs": epochs,
    }


# ---------------------------------------------------------------- the parent

def machine() -> dict:
    """What the figures were measured on."""
    cpu = ""
    if Path("/proc/cpuinfo").is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                    .splitlines() if line.startswith("model name")), "")
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None}


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def fresh_clone(checkout: Path, work: Path, commit: str | None) -> tuple[Path, float]:
    """A clone of `checkout` at `commit` (default: its HEAD) and the seconds its set-up
    (`make .venv/.installed`) took."""
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(checkout), str(clone)], check=True)
    if commit:
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
    start = time.time()
    subprocess.run(["make", ".venv/.installed"], cwd=clone, check=True)
    return clone, time.time() - start


def kept_events(events: list[dict]) -> list[dict]:
    """The events the phases come from, and the log lines of the steps' ends and the epochs."""
    return [e for e in events if e["event"] != "log" or e["message"].startswith("Finished in")
            or e["logger"].startswith("ocr_core")]


def run_command(checkout: Path, cli_args: list[str], events_path: Path, nice: int,
                env: dict[str, str]) -> dict:
    """One `ocr-pipeline` command through the driver, with its phases."""
    python = checkout / ".venv" / "bin" / "python"
    command = [str(python), str(HERE), "--driver", str(events_path), "--", *cli_args]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    spawned = time.time()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, env=env)
    ended = time.time()
    sys.stdout.write(done.stdout)
    events = json.loads(events_path.read_text()) if events_path.is_file() else []
    result = {"command": ["ocr-pipeline", *cli_args], "returncode": done.returncode,
              "stdout": done.stdout[-3000:], "stderr_tail": done.stderr[-3000:],
              "spawned": spawned, "ended": ended, "events": kept_events(events)}
    if done.returncode == 0 and events:
        result |= phases(events, spawned, ended)
    else:
        result["wall_s"] = round(ended - spawned, 2)
    match = re.search(r"test sequence accuracy:\s+(\S+) \((\d+)/(\d+)", done.stdout)
    if match:
        result["test"] = {"accuracy": match.group(1), "correct": int(match.group(2)),
                          "count": int(match.group(3))}
    model = re.search(r"^model:\s+(\S+)", done.stdout, re.MULTILINE)
    result["model"] = model.group(1) if model else None
    return result


def read_unseen(checkout: Path, model: str, seed: int, count: int, work: Path,
                env: dict[str, str]) -> dict:
    """The trained model's sequence accuracy on `count` generated captchas of `seed`."""
    binary = str(checkout / ".venv" / "bin" / "ocr-pipeline")
    folder = work / f"unseen-{seed}-{count}"
    subprocess.run([binary, "generate", "--count", str(count), "--seed", str(seed), str(folder)],
                   cwd=checkout, check=True, capture_output=True, env=env)
    done = subprocess.run([binary, "evaluate", "--model", model, str(folder)], cwd=checkout,
                          capture_output=True, text=True, env=env)
    match = re.search(r"sequence accuracy:?\s+(\S+) \((\d+)/(\d+)(?:, ([\d.]+)-([\d.]+)%)?",
                      done.stdout)
    result = {"seed": seed, "count": count, "returncode": done.returncode,
              "stdout": done.stdout[-2000:]}
    if match:
        result |= {"accuracy": match.group(1), "correct": int(match.group(2)),
                   "total": int(match.group(3))}
    return result


def stop_kept_server(env: dict[str, str]) -> bool:
    """Stop the local Prefect server an earlier command kept (`flows/kept_server.py`), if any."""
    home = Path(env.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    try:
        pid = json.loads((home / "ocr-pipeline-server" / "server.json").read_text())["pid"]
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return False
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    return True


def profile(args: argparse.Namespace) -> dict:
    checkout = Path(args.ref or REPO).resolve()
    work = Path(args.work or tempfile.mkdtemp(prefix="profile-main-job-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = {"machine_before": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "checkout": str(checkout), "commit": git(checkout, "rev-parse", "HEAD"),
              "dirty": bool(git(checkout, "status", "--porcelain", "--untracked-files=no")),
              "arguments": vars(args), "setup_s": None}
    if args.fresh_clone:
        checkout, setup = fresh_clone(checkout, work, args.commit)
        report["setup_s"] = round(setup, 2)
        report["dirty"] = False
        report["commit"] = git(checkout, "rev-parse", "HEAD")
    env = dict(os.environ)
    if args.fresh_prefect_home:
        env["PREFECT_HOME"] = str(work / "prefect-home")
    report["prefect_home"] = env.get("PREFECT_HOME", "~/.prefect (the user's)")
    report["kept_server_stopped"] = stop_kept_server(env)  # the first run starts its own
    results = work / "ocr-results"
    cli_args = ["captcha", "--results-dir", str(results), *args.captcha_args]
    report["runs"] = [run_command(checkout, cli_args, work / "events-first.json", args.nice, env)]
    if args.rerun:
        report["runs"].append(run_command(checkout, cli_args, work / "events-rerun.json",
                                          args.nice, env))
    model = report["runs"][0].get("model")
    if args.unseen_count and model:
        report["unseen"] = [read_unseen(checkout, model, seed, args.unseen_count, work, env)
                            for seed in args.unseen_seed]
    report["machine_after"] = machine()
    if args.fresh_clone and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return report


def table(reports: list[tuple[str, dict]]) -> str:
    """The phases of one or more profiles side by side, as markdown."""
    rows: dict[str, list[str]] = {}

    def put(label: str, column: int, value) -> None:
        rows.setdefault(label, [""] * len(reports))[column] = (
            "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value))

    for column, (_, report) in enumerate(reports):
        for run in report["runs"]:  # computed again from the raw events: the same rules for all
            if run.get("events") and run.get("returncode") == 0:
                run |= phases(run["events"], run["spawned"], run["ended"])
        first = report["runs"][0]
        put("set-up (`make .venv/.installed`, fresh clone)", column, report.get("setup_s"))
        put("process start to the flow call (imports, CLI)", column, first.get("to_flow_call_s"))
        put("Prefect server start, from its start to answering (overlaps other phases)", column,
            first.get("server_start_s"))
        put("waiting for the server (nothing else running)", column, first.get("server_wait_s"))
        put("TensorFlow imported at", column, first.get("tensorflow_imported_s"))
        for step in first.get("steps", []):
            label = step["step"]
            if label == "render_captcha_shard":
                label = f"render_captcha_shard (generation, {step['runs']} run(s), span)"
            put(label, column, step["seconds"])
        for epoch in first.get("epochs", []):
            callbacks = ", ".join(f"{k} {v:.1f}" for k, v in epoch["callbacks_s"].items()
                                  if v >= 0.05)
            put(f"epoch {epoch['epoch']}: train / Keras validation / epoch-end callbacks",
                column, f"{epoch['train_s']:.1f} / {epoch['keras_validation_s']:.1f} / "
                        f"{epoch['epoch_end_callbacks_s']:.1f} ({callbacks})")
        put("after the flow (exit, server stop)", column,
            (first.get("after_flow_s") or 0) + (first.get("exit_s") or 0))
        put("**main job, wall (without set-up)**", column, first.get("wall_s"))
        if report.get("setup_s") is not None and first.get("wall_s") is not None:
            put("**with set-up**", column, round(report["setup_s"] + first["wall_s"], 2))
        test = first.get("test")
        put("test split", column, f"{test['accuracy']} ({test['correct']}/{test['count']})"
            if test else None)
        if len(report["runs"]) > 1:
            rerun = report["runs"][1]
            states = sorted({s["state"] for s in rerun.get("steps", []) if s["state"]})
            put("**cached rerun, wall**", column, rerun.get("wall_s"))
            put("rerun loaded TensorFlow", column, rerun.get("tensorflow_loaded"))
            put("rerun: to the flow call / waiting for the server / flow / after it", column,
                f"{rerun.get('to_flow_call_s')} / {rerun.get('server_wait_s')} / "
                f"{rerun.get('flow_s')} / "
                f"{(rerun.get('after_flow_s') or 0) + (rerun.get('exit_s') or 0):.1f} "
                f"(states: {', '.join(states)})")
        unseen = report.get("unseen") or []
        for reading in [unseen] if isinstance(unseen, dict) else unseen:
            if "accuracy" in reading:
                put(f"unseen seed {reading['seed']}", column,
                    f"{reading['accuracy']} ({reading['correct']}/{reading['total']})")
        put("load average before / after", column,
            f"{report['machine_before']['loadavg'][0]:.1f} / "
            f"{report['machine_after']['loadavg'][0]:.1f}")
    header = "| phase (s) | " + " | ".join(name for name, _ in reports) + " |"
    lines = [header, "|---|" + "---|" * len(reports)]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows.items()]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--driver":
        separator = sys.argv.index("--")
        run_driver(sys.argv[2], sys.argv[separator + 1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="checkout to profile (default: this one)")
    parser.add_argument("--fresh-clone", action="store_true",
                        help="clone the checkout into the work folder and time its set-up")
    parser.add_argument("--commit", help="with --fresh-clone: the commit to check out (default HEAD)")
    parser.add_argument("--fresh-prefect-home", action="store_true",
                        help="a new PREFECT_HOME (its database migrations timed too)")
    parser.add_argument("--rerun", action="store_true", help="run the command again (cached)")
    parser.add_argument("--unseen-seed", type=int, nargs="+", default=[31337],
                        help="seeds of the unseen captchas (one set of --unseen-count each)")
    parser.add_argument("--unseen-count", type=int, default=0,
                        help="read this many captchas of --unseen-seed with the model (0: none)")
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--work", help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the fresh clone's work folder")
    parser.add_argument("--out", help="write the raw JSON here")
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="print the table of these profiles side by side and exit")
    parser.add_argument("captcha_args", nargs="*", help="after --: extra `captcha` flags")
    args = parser.parse_args()
    if args.table:
        print(table([(Path(p).stem, json.loads(Path(p).read_text())) for p in args.table]))
        return
    report = profile(args)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(table([("this run", report)]))


if __name__ == "__main__":
    main()
