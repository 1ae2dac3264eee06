"""Judging before and after training: racing a trained policy for N laps, and checking a reward function before a
run starts (docs/deepracer.md#where-the-code-lives).
"""
