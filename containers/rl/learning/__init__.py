"""Learning: PPO and SAC extended to DeepRacer's episodic iterations, the iteration loop, and one run end to end
(docs/deepracer.md#how-the-trainer-extends-stable-baselines3).
"""
