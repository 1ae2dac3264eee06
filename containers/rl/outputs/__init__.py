"""What a run writes in DeepRacer's formats: metrics, sim-traces, the checkpoint index, the best-model rule, and the
reward and lap graphs (docs/deepracer.md#log-layout).
"""
