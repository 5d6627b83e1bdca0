"""MNIST digits: loaders (IDX, npz, tfds, keras), tf.data pipelines, the original notebook's three models,
training with early stopping, evaluation and plots.

Conventions: images are (count, 28, 28) uint8 arrays at rest and (batch, 28, 28, 1) float32 in
[0, 1] inside a pipeline (channels last); labels are integers 0-9.
"""
