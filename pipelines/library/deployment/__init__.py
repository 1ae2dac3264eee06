"""Deploying a model package to an endpoint: ``blue_green`` (the SageMaker calls), ``deployment_health`` (the health
check), ``deployment_history`` (one record per attempt) and ``rollout`` (one deployment run, in order)."""
