"""The one training loop for both model kinds: fit, early stopping, resume after a kill."""
