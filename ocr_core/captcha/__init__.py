"""Captchas: generation, tf.data pipelines, CTC, the recipes, training plug-ins, reading, plots."""
