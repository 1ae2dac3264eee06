"""Pre-training bias metrics (docs/clarify.md#bias-metrics-smclarify-05-arithmetic-bit-for-bit): CI, DPL, KL, JS, LP,
TVD, KS, CDDL, with smclarify 0.5's arithmetic.

KL, JS, LP, TVD and KS compare the distributions of the **binarised** label in *a* and *d*; outcomes whose
probability is 0 in either group are dropped without renormalising (smclarify's ``pdfs_aligned_nonzero``).
"""

from __future__ import annotations

import numpy as np

from containers.clarify.bias.metric_base import BiasInputs, Metric, MetricFailure, count, divide

__all__ = ["PRE_TRAINING", "aligned_pdfs", "conditional_disparity", "positive_proportion_difference"]


def class_imbalance(inputs: BiasInputs) -> float:
    n_d = count(inputs.sensitive)
    n_a = len(inputs.sensitive) - n_d
    if n_a == 0:
        raise MetricFailure("CI: negated facet set is empty. Check that x[~facet] has non-zero length.")
    if n_d == 0:
        raise MetricFailure("CI: facet set is empty. Check that x[facet] has non-zero length.")
    return float(n_a - n_d) / (n_a + n_d)


def positive_proportion_difference(sensitive: np.ndarray, positive: np.ndarray) -> float:
    """q_a − q_d with q = n(1)/n (DPL on labels, DPPL on predictions)."""
    n_d = count(sensitive)
    n_a = len(sensitive) - n_d
    if n_a == 0:
        raise MetricFailure("Negative facet set is empty.")
    if n_d == 0:
        raise MetricFailure("Facet set is empty.")
    return count(~sensitive & positive) / n_a - count(sensitive & positive) / n_d


def aligned_pdfs(inputs: BiasInputs) -> tuple[np.ndarray, np.ndarray]:
    """P_a and P_d over {False, True}, keeping only outcomes with non-zero probability in both groups."""
    label_a = inputs.label[~inputs.sensitive]
    label_d = inputs.label[inputs.sensitive]
    p_a: list[float] = []
    p_d: list[float] = []
    for outcome in (False, True):
        hits_a, hits_d = count(label_a == outcome), count(label_d == outcome)
        if hits_a and hits_d:
            p_a.append(hits_a / len(label_a))
            p_d.append(hits_d / len(label_d))
    if not p_a:
        raise MetricFailure("No instance of common facet found, dataset may be too small")
    return np.array(p_a), np.array(p_d)


def kl_divergence(inputs: BiasInputs) -> float:
    p_a, p_d = aligned_pdfs(inputs)
    return float(np.sum(p_a * np.log(p_a / p_d)))


def js_divergence(inputs: BiasInputs) -> float:
    p_a, p_d = aligned_pdfs(inputs)
    p = 1 / 2 * (p_a + p_d)
    return float(0.5 * (np.sum(p_a * np.log(p_a / p)) + np.sum(p_d * np.log(p_d / p))))


def lp_norm(inputs: BiasInputs) -> float:
    p_a, p_d = aligned_pdfs(inputs)
    return float(np.linalg.norm(p_a - p_d, 2))


def total_variation(inputs: BiasInputs) -> float:
    p_a, p_d = aligned_pdfs(inputs)
    return 0.5 * float(np.linalg.norm(p_a - p_d, 1))


def kolmogorov_smirnov(inputs: BiasInputs) -> float:
    p_a, p_d = aligned_pdfs(inputs)
    return float(np.linalg.norm(p_a - p_d, np.inf))


def conditional_disparity(sensitive: np.ndarray, positive: np.ndarray, group: np.ndarray | None) -> float:
    """CDD: Σ_i n_i·DD_i / Σ_i n_i with DD_i = n_d^i(0)/n^i(0) − n_d^i(1)/n^i(1) over subgroups of ``group``."""
    if group is None or len(group) == 0:
        raise MetricFailure("Group variable is empty or not provided")
    if count(positive) == 0:
        raise MetricFailure("No positive labels in set")
    if count(~positive) == 0:
        raise MetricFailure("No negative labels in set")
    sizes: list[float] = []
    disparities: list[float] = []
    for subgroup in np.unique(group):
        member = group == subgroup
        sizes.append(float(count(member)))
        accepted = count(positive & member)
        rejected = count(~positive & member)
        share_accepted = count(positive & sensitive & member) / accepted if accepted else 0
        share_rejected = count(~positive & sensitive & member) / rejected if rejected else 0
        disparities.append(share_rejected - share_accepted)
    counts = np.array(sizes)
    return divide(float(np.sum(counts * np.array(disparities))), float(np.sum(counts)))


def _dpl(inputs: BiasInputs) -> float:
    return positive_proportion_difference(inputs.sensitive, inputs.label)


def _cddl(inputs: BiasInputs) -> float:
    return conditional_disparity(inputs.sensitive, inputs.label, inputs.group)


PRE_TRAINING: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("CDDL", "Conditional Demographic Disparity in Labels (CDDL)", _cddl),
        Metric("CI", "Class Imbalance (CI)", class_imbalance),
        Metric("DPL", "Difference in Positive Proportions in Labels (DPL)", _dpl),
        Metric("JS", "Jensen-Shannon Divergence (JS)", js_divergence),
        Metric("KL", "Kullback-Liebler Divergence (KL)", kl_divergence),
        Metric("KS", "Kolmogorov-Smirnov Distance (KS)", kolmogorov_smirnov),
        Metric("LP", "L-p Norm (LP)", lp_norm),
        Metric("TVD", "Total Variation Distance (TVD)", total_variation),
    )
}
