"""The digit kind of training: how epochs compare and how an epoch reads in the log.

Digit models train through the one training loop (`ocr_core.training.fit.fit`), on a validation split
of the training images (never the test set).
"""

from __future__ import annotations

import math

from ocr_core.training.stopping import StoppingRule

# The lowest validation loss, as Keras's EarlyStopping kept it; an exact tie goes to accuracy.
RULE = StoppingRule("loss-then-accuracy", (("val_loss", "min"), ("val_accuracy", "max")))


def digit_summary(logs: dict) -> str:
    """A classifier epoch in a few numbers: loss and accuracy, train and validation."""
    return (f"loss {logs.get('loss', math.nan):.4f}, "
            f"accuracy {100 * logs.get('accuracy', math.nan):.2f}%, "
            f"val_loss {logs.get('val_loss', math.nan):.4f}, "
            f"val_accuracy {100 * logs.get('val_accuracy', math.nan):.2f}%")
