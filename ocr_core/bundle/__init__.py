"""The model bundle: a folder with the model and what it needs (one format for both kinds).

`folder` saves and loads bundles (it imports Keras); `format` describes bundle.json and reads
older ones (light, no Keras).
"""
