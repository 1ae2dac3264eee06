"""Known answers for what the console draws: chart geometry, metric series from log lines, drift re-binning, Clarify
and DeepRacer report parsing."""

import io

import numpy as np
import pytest

from infra.control_plane.console.deepracer_pages import iteration_records, lap_traces, track_lines
from infra.control_plane.console.job_pages import log_cursor, metric_series
from infra.control_plane.console.monitoring_pages import _rebin, bias_tables, drift_charts, shap_charts
from infra.control_plane.console.svg_charts import HEIGHT, WIDTH, bar_chart, line_chart


def test_a_line_chart_places_points_inside_the_plot_and_marks_the_chosen_one():
    chart = line_chart("loss", [("a", [(0, 1.0), (1, 3.0), (2, 2.0)])], marked=[(1, 3.0)])
    points = chart.series[0].points
    left, top, right, bottom = chart.plot
    assert [p.cx for p in points] == [left, (left + right) / 2, right]  # x spans the plot exactly
    assert points[1].cy < points[2].cy < points[0].cy  # y grows upwards
    assert all(top <= p.cy <= bottom for p in points)
    assert [p.marked for p in points] == [False, True, False]
    assert 0 < left < right <= WIDTH and 0 < top < bottom <= HEIGHT


def test_a_line_chart_skips_non_finite_values_and_is_empty_without_points():
    chart = line_chart("x", [("a", [(0, float("nan")), (1, float("inf")), (2, 5.0)])])
    assert [(p.x, p.y) for p in chart.series[0].points] == [(2.0, 5.0)]
    assert line_chart("x", [("a", [])]).empty


def test_bars_start_at_zero_and_keep_their_values():
    chart = bar_chart("shares", ["lo", "hi"], [("baseline", [0.25, 0.75]), ("window", [0.5, -0.5])])
    assert [(b.label, b.series, b.value) for b in chart.bars] == [
        ("lo", "baseline", 0.25),
        ("hi", "baseline", 0.75),
        ("lo", "window", 0.5),
        ("hi", "window", -0.5),
    ]
    negative = chart.bars[-1]
    assert negative.y == pytest.approx(chart.baseline_y)  # a negative bar hangs below the zero line
    assert chart.bars[1].height == pytest.approx(3 * chart.bars[0].height)


def test_metric_series_reads_every_match_in_time_order_with_escaped_tabs():
    lines = [
        (3.0, "[2]\ttrain-rmse:0.3\tvalidation-rmse:0.5"),
        (1.0, "[0]\ttrain-rmse:0.9\tvalidation-rmse:1.5"),
        (2.0, "nothing here"),
    ]
    definitions = [
        {"Name": "validation:rmse", "Regex": r"validation-rmse:([0-9.]+)"},
        {"Name": "train:rmse", "Regex": r"#011train-rmse:([0-9.]+)"},  # a built-in's regex on the escaped line
        {"Name": "broken", "Regex": "("},
    ]
    assert metric_series(lines, definitions) == {
        "validation:rmse": [(1.0, 1.5), (3.0, 0.5)],
        "train:rmse": [(1.0, 0.9), (3.0, 0.3)],
    }


def test_the_log_cursor_counts_the_events_at_the_last_millisecond():
    assert log_cursor([]) == (0, 0)
    assert log_cursor([("s", 5, "a"), ("s", 7, "b"), ("t", 7, "c")]) == (7, 2)


def test_rebinning_spreads_each_bucket_over_its_range():
    buckets = [
        {"lower_bound": 0.0, "upper_bound": 1.0, "count": 10},
        {"lower_bound": 1.0, "upper_bound": 2.0, "count": 30},
    ]
    edges = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert _rebin(buckets, edges) == pytest.approx([0.125, 0.125, 0.375, 0.375])
    point = [{"lower_bound": 2.0, "upper_bound": 2.0, "count": 4}]  # min == max
    assert _rebin(point, edges) == [0.0, 0.0, 0.0, 1.0]


def _numeric(name, low, high, count):
    buckets = [{"lower_bound": low, "upper_bound": high, "count": count}]
    return {"name": name, "numerical_statistics": {"distribution": {"kll": {"buckets": buckets}}}}


def test_drift_charts_compare_baseline_and_window_on_shared_bins_with_the_features_violations():
    baseline = {"features": [_numeric("x", 0.0, 10.0, 100)]}
    current = {
        "features": [
            _numeric("x", 10.0, 20.0, 50),
            {
                "name": "c",
                "string_statistics": {"distribution": {"categorical": {"buckets": [{"value": "a", "count": 3}]}}},
            },
        ]
    }
    violations = [{"feature_name": "x", "constraint_check_type": "baseline_drift_check", "description": "d=1"}]
    (x_name, x_note, x_chart), (c_name, c_note, c_chart) = drift_charts(baseline, current, violations)
    assert (x_name, x_note, c_name, c_note) == ("x", "baseline_drift_check: d=1", "c", "")
    shares = {s: [b.value for b in x_chart.bars if b.series == s] for s in ("baseline", "window")}
    assert shares["baseline"] == pytest.approx([0.2] * 5 + [0.0] * 5)  # bins of 2 over the union [0, 20]
    assert shares["window"] == pytest.approx([0.0] * 5 + [0.2] * 5)
    assert [(b.label, b.series, b.value) for b in c_chart.bars] == [("a", "window", 1.0)]  # no baseline column


def test_clarify_bias_rows_and_shap_bars_come_from_analysis_json():
    analysis = {
        "pre_training_bias_metrics": {
            "label": "risk",
            "facets": {"sex": [{"value_or_threshold": "1", "metrics": [{"name": "CI", "value": 0.1}]}]},
        },
        "explanations": {"kernel_shap": {"label0": {"global_shap_values": {"age": 0.1, "amount": -0.4, "x": 0.2}}}},
    }
    assert bias_tables(analysis) == [
        {
            "stage": "pre-training",
            "label": "risk",
            "facet": "sex",
            "value": "1",
            "metrics": [{"name": "CI", "value": 0.1}],
        }
    ]
    (chart,) = shap_charts(analysis)
    assert [(b.label, b.value) for b in chart.bars] == [("amount", -0.4), ("x", 0.2), ("age", 0.1)]


def test_deepracer_iterations_laps_and_track_are_read_from_the_runs_outputs():
    lines = [
        "iteration 1: episodes=4 steps=100 train_reward=10.50 train_completion=20.0 eval_reward=5.00 "
        "eval_completion=10.0 best_iteration=1 best_eval_completion=10.0 elapsed_s=3.0",
        "evaluation lap 1: completion=100% time=33.667s status=Lap complete off_track=0",
        "iteration 2: episodes=8 steps=210 train_reward=12.25 train_completion=30.0 eval_reward=6.00 "
        "eval_completion=15.0 best_iteration=2 best_eval_completion=15.0 elapsed_s=6.0",
    ]
    records = iteration_records(lines)
    assert [(r["iteration"], r["train_reward"], r["eval_completion"]) for r in records] == [
        (1, 10.5, 10.0),
        (2, 12.25, 15.0),
    ]
    trace = b"episode,steps,X,Y,yaw\n0,1,0.5,1.5,0\n0,2,0.6,1.6,0\n1,1,2.0,3.0,0\nbad,row,,,\n"
    assert lap_traces(trace) == [(1, [(0.5, 1.5), (0.6, 1.6)]), (2, [(2.0, 3.0)])]
    route = np.array([[0, 0, 0, 1, 0, -1], [1, 0, 1, 1, 1, -1]], dtype=float)
    buffer = io.BytesIO()
    np.save(buffer, route)
    borders, centre = track_lines(buffer.getvalue())
    assert centre == [(0.0, 0.0), (1.0, 0.0)] and borders == [[(0.0, 1.0), (1.0, 1.0)], [(0.0, -1.0), (1.0, -1.0)]]
    assert track_lines(b"not numpy") == ([], [])
