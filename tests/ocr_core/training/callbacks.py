"""Keras callbacks the training tests plug into `fit`: scripted validation figures, a kill."""

import keras
import numpy as np


class ScriptedFigures(keras.callbacks.Callback):
    """Writes hand-made validation figures into each epoch's logs and keeps its weights."""

    def __init__(self, history: dict[str, list[float]]) -> None:
        super().__init__()
        self.history = history
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        logs.update({name: values[epoch] for name, values in self.history.items()})
        self.weights.append(self.model.get_weights())


class Interrupt(keras.callbacks.Callback):
    """Stops the process's training at the start of an epoch, as a kill would."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt
