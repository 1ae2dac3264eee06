"""Reinforcement-learning container: a DeepRacer-style simulator and trainer (stable-baselines3, PyTorch CPU)."""
