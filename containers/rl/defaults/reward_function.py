"""Default reward: follow the centre line (the DeepRacer console's first example, written for this project)."""


def reward_function(params: dict) -> float:
    """Three bands around the centre line, as fractions of the track width; nearly nothing outside them."""
    track_width = params["track_width"]
    distance_from_center = params["distance_from_center"]
    if distance_from_center <= 0.1 * track_width:
        reward = 1.0
    elif distance_from_center <= 0.25 * track_width:
        reward = 0.5
    elif distance_from_center <= 0.5 * track_width:
        reward = 0.1
    else:
        reward = 1e-3
    return float(reward)
