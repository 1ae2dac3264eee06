"""Evaluation step (runs inside a SageMaker processing container): the trained model on the test split.

Writes ``evaluation.json`` (the pipeline's PropertyFile: ``binary_classification_metrics.auc.value`` ...) with the
ROC curve points, so the run report can draw it without reading the model again, and ``predictions.csv``
(``label,probability,prediction``), the model-quality check's baseline dataset.
"""

from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score, roc_curve

logger = logging.getLogger(__name__)
BASE = Path("/opt/ml/processing")


def load_booster(model_dir: Path) -> xgboost.Booster:
    archive = next(model_dir.rglob("model.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir / "extracted", filter="data")
    booster = xgboost.Booster()
    booster.load_model(str(next((model_dir / "extracted").rglob("xgboost-model*"))))
    return booster


def evaluate(labels: np.ndarray, scores: np.ndarray) -> dict[str, object]:
    predictions = (scores >= 0.5).astype(int)
    fpr, tpr, _ = roc_curve(labels, scores)
    return {
        "binary_classification_metrics": {
            "auc": {"value": float(roc_auc_score(labels, scores))},
            "accuracy": {"value": float(accuracy_score(labels, predictions))},
            "f1": {"value": float(f1_score(labels, predictions))},
            "rows": {"value": len(labels)},
        },
        "roc_curve": {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]},
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    test = pd.read_csv(next((BASE / "test").rglob("*.csv")), header=None)
    booster = load_booster(BASE / "model")
    scores = booster.predict(xgboost.DMatrix(test.iloc[:, 1:].to_numpy()))
    report = evaluate(test.iloc[:, 0].to_numpy(), scores)
    out = BASE / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report))
    # the model-quality baseline input: ground truth, score and predicted label per test row
    predictions = BASE / "predictions"
    predictions.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"label": test.iloc[:, 0].astype(int), "probability": scores, "prediction": (scores >= 0.5).astype(int)}
    ).to_csv(predictions / "predictions.csv", index=False)
    logger.info("auc=%.4f", report["binary_classification_metrics"]["auc"]["value"])  # type: ignore[index]


if __name__ == "__main__":
    main()
