"""Early stopping that can tell epochs apart: which epoch to keep, when to stop, and why.

A rule compares epochs on validation figures in order (a later figure only breaks ties of the
earlier ones): on a small validation set, sequence accuracy and CER tie for many epochs once they
saturate, and strict improvement on them alone keeps the first of the tied epochs. The same
`EpochSelector` runs inside training (`SelectiveStopping`) and over a recorded history
(`select_epoch`), so a benchmark can ask which epoch each rule would have kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

logger = logging.getLogger(__name__)

LABELS = {"val_character_error_rate": "val CER", "val_loss": "val loss",
          "val_sequence_accuracy": "val sequence accuracy", "val_accuracy": "val accuracy"}


@dataclass(frozen=True)
class StoppingRule:
    """How epochs compare: `monitors` in order, each "min" or "max"; later ones break ties.

    `min_delta` is the relative gain the last monitor needs to count (so a loss creeping down by
    noise does not reset patience); `ties_to_last` keeps the last of fully tied epochs.
    """

    name: str
    monitors: tuple[tuple[str, str], ...]
    min_delta: float = 0.0
    ties_to_last: bool = False


RULES: dict[str, StoppingRule] = {rule.name: rule for rule in (
    StoppingRule("cer", (("val_character_error_rate", "min"),)),
    StoppingRule("cer-last-tied", (("val_character_error_rate", "min"),), ties_to_last=True),
    StoppingRule("cer-then-loss", (("val_character_error_rate", "min"), ("val_loss", "min"))),
    StoppingRule("cer-then-loss-1pct", (("val_character_error_rate", "min"), ("val_loss", "min")),
                 min_delta=0.01),
    StoppingRule("accuracy-cer-loss", (("val_sequence_accuracy", "max"),
                                       ("val_character_error_rate", "min"), ("val_loss", "min"))),
    StoppingRule("loss", (("val_loss", "min"),)),
)}
DEFAULT_RULE = "cer-then-loss"


@dataclass
class EpochSelector:
    """Follows epochs one by one: the best so far, why it is best, and whether to stop.

    Epochs before `start_from_epoch` (0-based) are not considered; training stops after
    `patience` considered epochs without a better one.
    """

    rule: StoppingRule
    start_from_epoch: int
    patience: int
    best_epoch: int | None = None  # 0-based
    best: dict[str, float] = field(default_factory=dict)
    wait: int = 0
    reason: str = ""

    def _better(self, logs: Mapping[str, float]) -> tuple[bool, int]:
        """(better than the best, index of the monitor that decided; -1: a full tie)."""
        last = len(self.rule.monitors) - 1
        for index, (name, mode) in enumerate(self.rule.monitors):
            value, best = float(logs[name]), self.best[name]
            gain = best - value if mode == "min" else value - best
            needed = abs(best) * self.rule.min_delta if index == last else 0.0
            if gain > needed:
                return True, index
            if value != best:
                return False, index
        return self.rule.ties_to_last, -1

    def update(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """Consider one finished epoch; True when it is the new best."""
        if epoch < self.start_from_epoch:
            return False
        self.wait += 1
        if self.best_epoch is None:
            decided = 0
        else:
            better, decided = self._better(logs)
            if not better:
                return False
        previous = self.best_epoch
        self.best_epoch, self.wait = epoch, 0
        self.best = {name: float(logs[name]) for name, _ in self.rule.monitors}
        self.reason = self._describe(epoch, decided, previous)
        return True

    def _describe(self, epoch: int, decided: int, previous: int | None) -> str:
        figures = ", ".join(f"{LABELS.get(name, name)} {self.best[name]:.4g}"
                            for name, _ in self.rule.monitors)
        if previous is None:
            why = f"first epoch considered (from epoch {self.start_from_epoch + 1})"
        elif decided == 0:
            why = f"better than epoch {previous + 1}"
        elif decided > 0:
            name = self.rule.monitors[decided][0]
            tied = " and ".join(LABELS.get(n, n) for n, _ in self.rule.monitors[:decided])
            why = (f"{tied} tied with epoch {previous + 1}, tie broken by "
                   f"{LABELS.get(name, name)}")
        else:
            why = f"tied with epoch {previous + 1}, the later kept"
        return f"epoch {epoch + 1}: {figures} ({why}; rule {self.rule.name})"

    @property
    def should_stop(self) -> bool:
        return self.best_epoch is not None and self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        """The selector's counters as JSON (for resuming a killed training)."""
        return {"best_epoch": self.best_epoch, "best": self.best, "wait": self.wait,
                "reason": self.reason}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.best_epoch, self.best = state["best_epoch"], dict(state["best"])
        self.wait, self.reason = state["wait"], state["reason"]


@dataclass(frozen=True)
class Selection:
    """Which epoch a rule keeps from a history (1-based), how many epochs it runs, and why."""

    kept_epoch: int
    epochs_run: int
    reason: str


def select_epoch(history: Mapping[str, Sequence[float]], rule: StoppingRule,
                 start_from_epoch: int, patience: int) -> Selection:
    """The epoch `rule` would keep from a full history, and where it would have stopped."""
    selector = EpochSelector(rule, start_from_epoch, patience)
    epochs = len(history[rule.monitors[0][0]])
    for epoch in range(epochs):
        selector.update(epoch, {name: values[epoch] for name, values in history.items()})
        if selector.should_stop:
            return Selection(selector.best_epoch + 1, epoch + 1, selector.reason)
    if selector.best_epoch is None:
        raise ValueError(f"no epoch from {start_from_epoch + 1} in a history of {epochs}")
    return Selection(selector.best_epoch + 1, epochs, selector.reason)


class SelectiveStopping(keras.callbacks.Callback):
    """Keras callback: keeps the best epoch's weights under an `EpochSelector`, stops on patience,
    restores the kept weights at the end and logs which epoch was kept and why."""

    def __init__(self, selector: EpochSelector) -> None:
        super().__init__()
        self.selector = selector
        self.best_weights: list | None = None
        self.stopped_epoch: int | None = None  # 0-based

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.stopped_epoch = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.selector.update(epoch, logs or {}):
            self.best_weights = self.model.get_weights()
        if self.selector.should_stop and epoch + 1 < self.params.get("epochs", epoch + 2):
            self.stopped_epoch = epoch
            self.model.stop_training = True
            logger.info("stopping after epoch %d: no better epoch in the last %d (patience)",
                        epoch + 1, self.selector.patience)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        if self.selector.best_epoch is not None:
            logger.info("kept %s", self.selector.reason)
