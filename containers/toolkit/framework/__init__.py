"""Framework script mode: the user's entry point for training, the inference toolkit's handler functions for serving."""
