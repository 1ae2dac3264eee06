"""What a run is made of: the hyperparameters, the agent written to ``model_metadata.json`` and the run configuration
saved next to the policy and read back (docs/deepracer.md#where-the-code-lives).
"""
