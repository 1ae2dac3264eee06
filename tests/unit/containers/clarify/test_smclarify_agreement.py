"""Golden check: every metric equals smclarify 0.5's on German credit and on synthetic data with known bias.

smclarify is a test-only oracle (``pip install --no-deps smclarify==0.5 pyfunctional``); skipped when absent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from benchmarks import clarify_metric_agreement as agreement

pytestmark = pytest.mark.capability("smclarify")  # tests/capabilities.py; benchmarks imports smclarify lazily


@pytest.fixture(autouse=True)
def _object_strings() -> Iterator[None]:
    with pd.option_context("future.infer_string", False):
        yield


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::Warning")
@pytest.mark.parametrize("source", ["german", "synthetic"])
def test_every_metric_equals_smclarify(source: str) -> None:
    if source == "german":
        frame, facets, group = agreement.german_credit()
        label = "risk"
    else:
        frame, facets, group = agreement.synthetic(rows=3000)
        label = "label"
    ours = agreement.ours(frame, facets, group, label)
    theirs = agreement.theirs(frame, facets, group, label)
    diff, compared = agreement.max_abs_diff(ours, theirs)
    assert compared >= 42
    assert diff <= 1e-12
