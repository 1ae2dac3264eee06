"""How each step type runs: SageMaker jobs and models, check steps, Lambda and Callback steps."""
