"""Post-training bias metrics (docs/clarify.md#bias-metrics-smclarify-05-arithmetic-bit-for-bit) with smclarify 0.5's
arithmetic, signs and edge cases.

*a* is the complement of the facet group, *d* the group; ``label`` and ``predicted`` are binarised indices.
FT uses smclarify's sign: +1 when every *d* member is model-positive and its *a*-neighbours are negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from containers.clarify.bias.metric_base import INFINITY, BiasInputs, Metric, MetricFailure, count, divide
from containers.clarify.bias.pretraining import conditional_disparity, positive_proportion_difference

__all__ = ["POST_TRAINING", "Confusion", "confusion"]

FT_NEIGHBOURS = 5
FT_MIN_NEIGHBOURS = 1
FT_SMALL_GROUP = 9


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int


def confusion(label: np.ndarray, predicted: np.ndarray, member: np.ndarray) -> Confusion:
    """The confusion matrix restricted to the rows where ``member`` is true."""
    return Confusion(
        tp=count(label & predicted & member),
        fp=count(~label & predicted & member),
        fn=count(label & ~predicted & member),
        tn=count(~label & ~predicted & member),
    )


def _matrices(inputs: BiasInputs) -> tuple[Confusion, Confusion]:
    inputs.check_groups()
    predicted = inputs.require_predicted
    return (
        confusion(inputs.label, predicted, ~inputs.sensitive),
        confusion(inputs.label, predicted, inputs.sensitive),
    )


def _difference(value_a: float, value_d: float, a_minus_d: bool = True) -> float:
    """``a − d`` (or ``d − a``), 0 when both sides are +inf (smclarify's rule)."""
    if value_a == value_d == INFINITY:
        return 0.0
    return value_a - value_d if a_minus_d else value_d - value_a


def dppl(inputs: BiasInputs) -> float:
    return positive_proportion_difference(inputs.sensitive, inputs.require_predicted)


def disparate_impact(inputs: BiasInputs) -> float:
    inputs.check_groups()
    predicted = inputs.require_predicted
    n_d = count(inputs.sensitive)
    n_a = len(inputs.sensitive) - n_d
    q_a = count(predicted & ~inputs.sensitive) / n_a
    q_d = count(predicted & inputs.sensitive) / n_d
    return divide(q_d, q_a)


def conditional_acceptance(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.tp + a.fn, a.tp + a.fp), divide(d.tp + d.fn, d.tp + d.fp))


def conditional_rejection(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.tn + a.fp, a.tn + a.fn), divide(d.tn + d.fp, d.tn + d.fn), a_minus_d=False)


def recall_difference(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.tp, a.tp + a.fn), divide(d.tp, d.tp + d.fn))


def specificity_difference(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.tn, a.tn + a.fp), divide(d.tn, d.tn + d.fp), a_minus_d=False)


def acceptance_rate_difference(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.tp, a.tp + a.fp), divide(d.tp, d.tp + d.fp))


def rejection_rate_difference(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.tn, a.tn + a.fn), divide(d.tn, d.tn + d.fn), a_minus_d=False)


def accuracy_difference(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    acc_a = divide(a.tp + a.tn, a.tp + a.tn + a.fp + a.fn)
    acc_d = divide(d.tp + d.tn, d.tp + d.tn + d.fp + d.fn)
    return _difference(acc_a, acc_d)


def treatment_equality(inputs: BiasInputs) -> float:
    a, d = _matrices(inputs)
    return _difference(divide(a.fn, a.fp), divide(d.fn, d.fp), a_minus_d=False)


def cddpl(inputs: BiasInputs) -> float:
    return conditional_disparity(inputs.sensitive, inputs.require_predicted, inputs.group)


def flip_test(inputs: BiasInputs) -> float:
    """k-NN (k = 5, or 1 when *a* has ≤ 9 rows) fitted on *a* with the model's labels, predicted on *d*."""
    inputs.check_groups()
    predicted = inputs.require_predicted
    features = inputs.features
    if features is None or features.shape[1] == 0:
        raise MetricFailure("FlipTest needs feature columns besides the facet")
    if len(features.columns) != len(features.select_dtypes([np.number, bool]).columns):
        raise MetricFailure("FlipTest does not support non-numeric columns")
    matrix = features.to_numpy()
    rows_a = ~inputs.sensitive
    neighbours = FT_NEIGHBOURS if count(rows_a) > FT_SMALL_GROUP else FT_MIN_NEIGHBOURS
    knn = KNeighborsClassifier(n_neighbors=neighbours, weights="uniform", p=2, metric="minkowski")
    knn.fit(matrix[rows_a], predicted[rows_a])
    as_if_a = knn.predict(matrix[inputs.sensitive]).astype(bool)
    model_d = predicted[inputs.sensitive]
    flips = count(model_d & ~as_if_a) - count(~model_d & as_if_a)
    return divide(flips, count(inputs.sensitive))


def generalized_entropy(inputs: BiasInputs) -> float:
    """GE(α = 2) over all rows: b = ŷ − y + 1, (1/(2n))·Σ[(b/b̄)² − 1]."""
    predicted = inputs.require_predicted
    n = len(inputs.label)
    if n == 0:
        raise MetricFailure("dataset must be non-empty")
    benefit = predicted.astype(np.int64) - inputs.label.astype(np.int64) + 1
    mean = benefit.mean()
    if mean == 0:
        raise MetricFailure(
            "All predicted labels are false negatives. There should be at least one prediction that is not false "
            "negative."
        )
    return float(((benefit / mean) ** 2 - 1).sum() / (n * 2 * 1))


POST_TRAINING: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("AD", "Accuracy Difference (AD)", accuracy_difference),
        Metric("CDDPL", "Conditional Demographic Disparity in Predicted Labels (CDDPL)", cddpl),
        Metric("DAR", "Difference in Acceptance Rates (DAR)", acceptance_rate_difference),
        Metric("DCA", "Difference in Conditional Acceptance (DCA)", conditional_acceptance),
        Metric("DCR", "Difference in Conditional Rejection (DCR)", conditional_rejection),
        Metric("DI", "Disparate Impact (DI)", disparate_impact),
        Metric("DPPL", "Difference in Positive Proportions in Predicted Labels (DPPL)", dppl),
        Metric("DRR", "Difference in Rejection Rates (DRR)", rejection_rate_difference),
        Metric("FT", "Flip Test (FT)", flip_test),
        Metric("GE", "Generalized Entropy (GE)", generalized_entropy),
        Metric("RD", "Recall Difference (RD)", recall_difference),
        Metric("SD", "Specificity Difference (SD)", specificity_difference),
        Metric("TE", "Treatment Equality (TE)", treatment_equality),
    )
}
