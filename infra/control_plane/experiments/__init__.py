"""SageMaker Experiments: experiments, trials, trial components, their metrics, Search, and job tracking."""
