"""Runs a training task's `.fn` from plain Python, so tests/tasks/test_resume_after_kill.py can
kill it between two epochs and run it again.

Usage: python train_until_killed.py KIND DATA_PICKLE RESULTS_DIR EPOCHS [PAUSE_AFTER]
KIND is captcha (`train_model`, recipe crnn) or digits (`train_digit_model`, model dense).
With PAUSE_AFTER, once epoch PAUSE_AFTER's state is saved the run prints
"paused after epoch PAUSE_AFTER" and waits to be killed.
"""

import logging
import pickle
import sys
import time
from pathlib import Path

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s",
                    force=True)
kind, record, results_dir, epochs, *pause_after = sys.argv[1:]
epochs = int(epochs)

import keras  # noqa: E402

if pause_after:
    fit = keras.Model.fit

    class Pause(keras.callbacks.Callback):
        """Last of the callbacks: every callback has finished the previous epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == int(pause_after[0]):
                print(f"paused after epoch {epoch}", flush=True)
                time.sleep(600)

    def paused_fit(self, *args, callbacks=(), **kwargs):
        return fit(self, *args, callbacks=[*callbacks, Pause()], **kwargs)

    keras.Model.fit = paused_fit

data = pickle.loads(Path(record).read_bytes())
if kind == "captcha":
    from tasks.training import train_model

    model = train_model.fn(data, "crnn", epochs, epochs, 8, None, False, 1, Path(results_dir))
elif kind == "digits":
    from tasks.mnist import train_digit_model

    model = train_digit_model.fn(data, "dense", epochs, epochs, 64, 0.2, 0, Path(results_dir))
else:
    sys.exit(f"KIND must be captcha or digits, not {kind!r}")
print(f"RESULT epochs_run={model.epochs_run} path={Path(results_dir) / model.path}", flush=True)
