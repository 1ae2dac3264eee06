"""Default inputs of ``make deepracer``: reward function, model metadata, hyperparameters."""
