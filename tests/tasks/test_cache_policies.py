"""Every task says how it is cached: by its step key, or not at all (never Prefect's default)."""

import importlib
import pkgutil

import pytest
from prefect import Task
from prefect.cache_policies import DEFAULT, NO_CACHE

import tasks
from tasks.step_policy import StepPolicy


def _all_tasks() -> list[Task]:
    found = {}
    for module in pkgutil.iter_modules(tasks.__path__):
        loaded = importlib.import_module(f"tasks.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, Task) and value.fn.__module__.startswith("tasks."):
                found[value.name] = value
    return list(found.values())


TASKS = _all_tasks()


def test_the_project_has_tasks():
    assert {"collect_captchas", "train_model", "publish_report", "fingerprint_folder"} <= {
        t.name for t in TASKS}


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_each_task_is_cached_by_its_step_key_or_not_at_all(task):
    policy = task.cache_policy
    assert policy is not DEFAULT
    if policy is NO_CACHE:
        assert not hasattr(task.fn, "step_key")
    else:
        assert isinstance(policy, StepPolicy) and hasattr(task.fn, "step_key")
        assert task.persist_result


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_each_task_pickles_for_remote_workers(task):
    """A Dask worker receives the task by cloudpickle; its step key must survive the trip."""
    import pickle

    import cloudpickle

    copy = pickle.loads(cloudpickle.dumps(task))
    assert copy.name == task.name and copy.task_key == task.task_key
    assert hasattr(copy.fn, "step_key") == hasattr(task.fn, "step_key")
