"""``sagestack deepracer export``: a trained run's output as DeepRacer on AWS's import folder and the car's package.

The import folder is laid out as deepracer-for-cloud's ``upload-model.sh`` writes a model's S3 prefix for the
console (docs/deepracer.md#export)::

    <prefix>/model/model_metadata.json, deepracer_checkpoints.json, checkpoint, <N>_Step-<S>.ckpt.{index,data-*,meta},
                   model_<N>.pb, .ready
    <prefix>/ip/hyperparameters.json
    <prefix>/reward_function.py, training_params.yaml, TrainingMetrics.json

The car package is ``<name>-car.tar.gz`` with ``agent/model.pb`` and ``model_metadata.json`` (DRfC's
``create-car-zip.sh`` layout, the files the car's model upload takes).
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from containers.rl.configuration.agent_metadata import STEREO_CAMERAS
from containers.rl.configuration.run_config import load_run_config
from containers.rl.evaluation.lap_evaluation import load_policy
from containers.rl.export.frozen_graph import GraphNames, write_graph
from containers.rl.export.policy_layers import policy_layers
from containers.rl.outputs.log_formats import write_json
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    model_folder: Path
    car_package: Path
    frozen_graph: Path
    names: GraphNames
    checkpoint: str
    input_shape: tuple[int, ...]


def _checkpoint_name(model_dir: Path, which: str) -> str:
    index = model_dir / "deepracer_checkpoints.json"
    if not index.exists():
        return "0_Step-0"
    entry = json.loads(index.read_text()).get(f"{which}_checkpoint") or {}
    return str(entry.get("name") or "0_Step-0").removesuffix(".zip").removesuffix(".ckpt")


def training_params(cfg_world: str, race_type: str, bucket: str, prefix: str, name: str) -> dict[str, str]:
    """The simulation's ``training_params.yaml`` keys (those DRfC's upload script and the console read)."""
    return {
        "AWS_REGION": "us-east-1",
        "JOB_TYPE": "TRAINING",
        "METRICS_S3_BUCKET": bucket,
        "METRICS_S3_OBJECT_KEY": f"{prefix}/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": f"{prefix}/model/model_metadata.json",
        "REWARD_FILE_S3_KEY": f"{prefix}/reward_function.py",
        "SAGEMAKER_SHARED_S3_BUCKET": bucket,
        "SAGEMAKER_SHARED_S3_PREFIX": prefix,
        "WORLD_NAME": cfg_world,
        "RACE_TYPE": race_type,
        "CAR_NAME": name,
        "DISPLAY_NAME": name,
        "RACER_NAME": name,
    }


def export_model(
    run_dir: Path, out_dir: Path, name: str, bucket: str = "bucket", prefix: str | None = None, which: str = "best"
) -> ExportResult:
    """Export the ``which`` (best or last) checkpoint of a training output directory (``make deepracer``'s
    ``.sagestack/deepracer``: ``model/`` plus the logs)."""
    model_dir = run_dir / "model"
    if not (model_dir / "model_metadata.json").exists():
        raise UserError(f"{run_dir} is not a DeepRacer training output (no model/model_metadata.json)")
    cfg = load_run_config(model_dir, run_dir)
    checkpoint = _checkpoint_name(model_dir, which)
    policy_file = model_dir / f"{checkpoint}.zip"
    if which == "best" or not policy_file.exists():
        policy_file = model_dir / "model.zip"
    if not policy_file.exists():
        raise UserError(f"no trained policy in {model_dir} (model.zip)")
    sensor = STEREO_CAMERAS if STEREO_CAMERAS in cfg.actions.sensor else ""
    layers = policy_layers(load_policy(policy_file, cfg.actions.training_algorithm), sensor)
    prefix = prefix or name
    folder = out_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "model").mkdir(parents=True)
    iteration = checkpoint.split("_", 1)[0]
    frozen = folder / "model" / f"model_{iteration}.pb"
    names = write_graph(layers, folder / "model" / f"{checkpoint}.ckpt", frozen)
    (folder / "model" / "checkpoint").write_text(f'model_checkpoint_path: "{checkpoint}.ckpt"\n')
    stamp: dict[str, Any] = {"name": f"{checkpoint}.ckpt", "avg_eval_metric": 0.0, "time_stamp": 0.0}
    index = model_dir / "deepracer_checkpoints.json"
    if index.exists():
        best = json.loads(index.read_text()).get(f"{which}_checkpoint") or {}
        stamp.update({k: best[k] for k in ("avg_eval_metric", "time_stamp") if k in best})
    write_json(folder / "model" / "deepracer_checkpoints.json", {"best_checkpoint": stamp, "last_checkpoint": stamp})
    shutil.copyfile(model_dir / "model_metadata.json", folder / "model" / "model_metadata.json")
    (folder / "model" / ".ready").touch()
    (folder / "ip").mkdir()
    shutil.copyfile(model_dir / "hyperparameters.json", folder / "ip" / "hyperparameters.json")
    shutil.copyfile(cfg.reward_path, folder / "reward_function.py")
    metrics = run_dir / "metrics" / "TrainingMetrics.json"
    if metrics.exists():
        shutil.copyfile(metrics, folder / "TrainingMetrics.json")
    else:
        write_json(folder / "TrainingMetrics.json", {"metrics": [], "version": 2.0, "best_model_metric": "progress"})
    params = training_params(cfg.hp.world_name, cfg.hp.race_type, bucket, prefix, name)
    with (folder / "training_params.yaml").open("w") as fh:
        yaml.safe_dump(params, fh, default_flow_style=False, default_style="'", explicit_start=True)
    car = out_dir / f"{name}-car.tar.gz"
    with tarfile.open(car, "w:gz", compresslevel=6) as tar:  # gzip's default: level 9 is twice as slow on weights
        tar.add(frozen, arcname="agent/model.pb")
        tar.add(folder / "model" / "model_metadata.json", arcname="model_metadata.json")
    logger.info("exported %s (checkpoint %s) to %s and %s", policy_file, checkpoint, folder, car)
    return ExportResult(folder, car, frozen, names, checkpoint, layers.input_shape)
