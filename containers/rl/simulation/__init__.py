"""The car and its world: tracks, the car's motion, race objects, the camera, the action space, the reward function
and the Gymnasium environment built from them (docs/deepracer.md#where-the-code-lives). Needs neither torch nor SB3.
"""
