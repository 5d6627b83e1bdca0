"""Runs `train_digit_model.fn` from plain Python (tests/tasks/test_mnist_resume_after_kill.py
kills it).

Usage: python train_digits_until_killed.py DIGIT_DATA_PICKLE RESULTS_DIR EPOCHS PAUSE_SECONDS
PAUSE_SECONDS > 0 waits at the start of epoch 3, so a kill lands after epoch 2's state is saved.
"""

import logging
import pickle
import sys
import time
from pathlib import Path

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s",
                    force=True)
record, results_dir, epochs, pause = sys.argv[1:5]

import keras  # noqa: E402

if float(pause):
    fit = keras.Model.fit

    class Pause(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                sys.stdout.flush()
                time.sleep(float(pause))

    def paused_fit(self, *args, callbacks=(), **kwargs):
        return fit(self, *args, callbacks=[*callbacks, Pause()], **kwargs)

    keras.Model.fit = paused_fit

from tasks.mnist import train_digit_model  # noqa: E402

data = pickle.loads(Path(record).read_bytes())
model = train_digit_model.fn(data, "dense", int(epochs), int(epochs), 64, 0.2, 0, Path(results_dir))
print(f"RESULT epochs_run={model.epochs_run} path={model.path}", flush=True)
