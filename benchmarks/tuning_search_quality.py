"""tuning_search_quality: how many Bayesian jobs reach the best that Random search finds in 20 jobs.

XGBoost on German credit (one-hot encoded, a fixed stratified 70/30 split), objective validation AUC (maximize), six
tuned hyperparameters. For each of 5 seeds: Random search runs 20 jobs; Bayesian search (the stack's ``Bayesian``
strategy object) runs up to ``BAYES_CAP`` jobs; ``jobs_to_match`` is the number of Bayesian jobs until its best reaches
Random's best-after-20 (``BAYES_CAP + 1`` when it never does). Reported: the median over seeds. Goal <= 12.

To keep it feasible the search logic (``infra.control_plane.tuning.tuning_search``, the same objects a tuning job
uses) runs against an in-process objective that trains the same xgboost model the container would (same parameters,
``num_round`` rounds, AUC on the validation split); the process runtime is not involved. Jobs run one at a time.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from benchmarks.common import ROOT, emit
from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.tuning.tuning_request import ParameterRanges
from infra.control_plane.tuning.tuning_search import SearchStrategy, build_strategy
from infra.control_plane.tuning.tuning_space import SearchSpace, parse_space

SEEDS = (0, 1, 2, 3, 4)
RANDOM_JOBS = 20
BAYES_CAP = 40
NUM_ROUND = 30
RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
        {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "10", "ScalingType": "Linear"},
        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "Linear"},
        {"Name": "gamma", "MinValue": "0", "MaxValue": "5", "ScalingType": "Linear"},
        {"Name": "alpha", "MinValue": "0.001", "MaxValue": "10", "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "10", "ScalingType": "Linear"}],
}


class Objective:
    """Validation AUC of an xgboost model trained with the given hyperparameter strings."""

    def __init__(self) -> None:
        frame = pd.read_csv(ROOT / "data" / "german_credit.csv")
        labels = frame.pop("risk").to_numpy(dtype=np.float32)
        features = pd.get_dummies(frame, dtype=np.float32).to_numpy(dtype=np.float32)
        order = np.random.default_rng(42).permutation(len(labels))
        cut = int(len(labels) * 0.7)
        train, valid = order[:cut], order[cut:]
        self.dtrain = xgb.DMatrix(features[train], label=labels[train])
        self.dvalid = xgb.DMatrix(features[valid], label=labels[valid])
        self.calls = 0

    def __call__(self, values: dict[str, str]) -> float:
        self.calls += 1
        params: dict[str, Any] = {"objective": "binary:logistic", "eval_metric": "auc", "nthread": 1, "seed": 0}
        params.update({name: float(text) for name, text in values.items()})
        params["max_depth"] = int(params["max_depth"])
        booster = xgb.train(params, self.dtrain, NUM_ROUND, evals=[(self.dvalid, "validation")], verbose_eval=False)
        return float(booster.eval(self.dvalid).rsplit(":", 1)[1])


def run(strategy: SearchStrategy, space: SearchSpace, objective: Objective, jobs: int) -> list[float]:
    """Sequential search; returns the best-so-far after each job."""
    best: list[float] = []
    for _ in range(jobs):
        suggestion = strategy.ask()
        if suggestion is None:
            break
        value = objective(space.to_strings(suggestion.coordinates))
        strategy.tell(suggestion.number, value)
        best.append(max(value, best[-1]) if best else value)
    return best


def jobs_to_match(curve: list[float], target: float) -> int:
    for index, value in enumerate(curve, start=1):
        if value >= target - 1e-12:
            return index
    return BAYES_CAP + 1


def main() -> None:
    space = parse_space(parse_request(ParameterRanges, RANGES))
    objective = Objective()
    matches, random_best, bayes_best20 = [], [], []
    for seed in SEEDS:
        random_curve = run(build_strategy("Random", space, True, seed, RANDOM_JOBS), space, objective, RANDOM_JOBS)
        bayes_curve = run(build_strategy("Bayesian", space, True, seed, RANDOM_JOBS), space, objective, BAYES_CAP)
        matches.append(jobs_to_match(bayes_curve, random_curve[-1]))
        random_best.append(random_curve[-1])
        bayes_best20.append(bayes_curve[RANDOM_JOBS - 1])
    emit(
        "tuning_search_quality",
        f"median over seeds {list(SEEDS)} of Bayesian (TPE) jobs to reach Random's best after {RANDOM_JOBS}; "
        f"per seed {matches}; in-process xgboost objective, German credit, {NUM_ROUND} rounds, sequential jobs",
        jobs_to_match=statistics.median(matches),
        random_best_auc=statistics.median(random_best),
        bayes_best_auc_at_20=statistics.median(bayes_best20),
    )


if __name__ == "__main__":
    main()
