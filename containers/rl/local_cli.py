"""``python -m containers.rl.local_cli train|validate|evaluate`` — the local DeepRacer loop (``make deepracer``).

train     train on a track with a reward function, action space and hyperparameters (defaults: the project's
          generated re:Invent-2018-like loop, follow-the-centre-line reward, the console's 10-action space)
validate  check a reward function against the console validator's inputs and real simulator states
evaluate  race N laps with a trained model directory (``<output>/model``)
export    DeepRacer on AWS's import folder and the car's package (frozen TensorFlow graph) of a trained run
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from containers.rl.configuration.hyperparams import load_hyperparameters_file
from containers.rl.simulation.actions import ActionSpace, default_action_space, load_model_metadata
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
from containers.rl.simulation.tracks import DEFAULT_TRACK, load_track
from containers.toolkit.errors import ToolkitError

logger = logging.getLogger(__name__)

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m containers.rl.local_cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a car, then evaluate it")
    train.add_argument("--reward", type=Path, default=DEFAULT_REWARD_FILE, help="reward_function.py")
    train.add_argument("--track", default=None, help=f"generated track name or N x 6 .npy (default {DEFAULT_TRACK})")
    train.add_argument("--actions", type=Path, default=None, help="model_metadata.json")
    train.add_argument("--hyperparameters", type=Path, default=None, help="hyperparameters.json")
    train.add_argument("--output-dir", type=Path, default=Path(".sagestack/deepracer"))
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    validate = sub.add_parser("validate", help="validate a reward function")
    validate.add_argument("reward", type=Path)
    validate.add_argument("--track", default=DEFAULT_TRACK)
    validate.add_argument("--strict", action="store_true", help="treat console-only rules as errors")
    evaluate = sub.add_parser("evaluate", help="evaluate a trained model directory")
    evaluate.add_argument("model_dir", type=Path)
    evaluate.add_argument("--laps", type=int, default=3)
    evaluate.add_argument("--output-dir", type=Path, default=None)
    export = sub.add_parser("export", help="export a trained run for DeepRacer on AWS and the physical car")
    export.add_argument("run_dir", type=Path, nargs="?", default=Path(".sagestack/deepracer"))
    export.add_argument("--output-dir", type=Path, default=None, help="default <run_dir>/export")
    export.add_argument("--name", default="sagestack-model", help="model name (folder, car package, CAR_NAME)")
    export.add_argument("--s3-bucket", default="bucket", help="bucket the folder will be uploaded to")
    export.add_argument("--s3-prefix", default=None, help="prefix the folder will be uploaded to (default: name)")
    export.add_argument("--checkpoint", choices=("best", "last"), default="best")
    export.add_argument("--openvino", action="store_true", help="also write the car's OpenVINO IR (model.xml)")
    return parser


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ToolkitError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _train(args: argparse.Namespace) -> int:
    from containers.rl.configuration.run_config import RunConfig  # torch and SB3 load only for training
    from containers.rl.learning.training_run import run

    hp_file = args.hyperparameters or DEFAULTS_DIR / "hyperparameters.json"
    overrides = _overrides(args.set)
    if args.track:
        overrides["world_name"] = args.track
    hp = load_hyperparameters_file(hp_file, overrides)
    actions: ActionSpace = load_model_metadata(args.actions) if args.actions else default_action_space()
    RewardFunction(args.reward)  # fail fast on an unimportable file
    out: Path = args.output_dir
    cfg = RunConfig(load_track(hp.world_name), actions, args.reward, hp, out / "model", out)
    summary = run(cfg)
    ev = summary.evaluation
    print(
        f"done in {summary.seconds:.0f} s: {len(summary.training.iterations)} iterations, "
        f"{summary.training.total_steps} steps, best iteration {summary.training.best_iteration}; "
        f"evaluation {ev.completed}/{len(ev.laps)} laps complete, mean completion {ev.mean_completion:.1f} %, "
        f"off track {ev.off_track}, best lap " + ("-" if ev.best_lap_ms is None else f"{ev.best_lap_ms / 1000:.2f} s")
    )
    print(f"outputs in {out}: reward_graph.png, reward_graph.html, evaluation_laps.png, metrics/, model/")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from containers.rl.evaluation.reward_validation import validate_reward_file

    report = validate_reward_file(args.reward, args.track)
    for case, outcome in report.cases:
        print(f"  {case:<28} {outcome}")
    for warning in report.warnings:
        print(f"WARNING: {warning}")
    for error in report.errors:
        print(f"ERROR: {error}")
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    verdict = "FAILED" if failed else "OK"
    print(f"{args.reward}: {verdict} ({len(report.errors)} error(s), {len(report.warnings)} warning(s))")
    return 1 if failed else 0


def _evaluate(args: argparse.Namespace) -> int:
    from containers.rl.configuration.run_config import load_run_config
    from containers.rl.evaluation.lap_evaluation import evaluate, load_policy, write_evaluation

    cfg = load_run_config(args.model_dir, args.output_dir or args.model_dir.parent)
    model = load_policy(args.model_dir / "model.zip", cfg.actions.training_algorithm)
    summary, traces = evaluate(cfg, model, args.laps)
    write_evaluation(cfg, summary, traces)
    for i, lap in enumerate(summary.laps, start=1):
        print(f"lap {i}: {lap['completion_percentage']} % in {lap['elapsed_time_in_milliseconds'] / 1000:.2f} s, "
              f"{lap['episode_status']}")  # fmt: skip
    return 0


def _export(args: argparse.Namespace) -> int:
    from containers.rl.export.model_folder import export_model  # TensorFlow loads only for export

    out = args.output_dir or args.run_dir / "export"
    result = export_model(args.run_dir, out, args.name, args.s3_bucket, args.s3_prefix, args.checkpoint)
    target = f"s3://{args.s3_bucket}/{args.s3_prefix or args.name}/"
    print(f"checkpoint {result.checkpoint}: model folder {result.model_folder} (upload it to {target} and import it)")
    print(f"car package {result.car_package}")
    print(f"frozen graph input {result.names.input}:0 {list(result.input_shape)}, output {result.names.output}:0")
    if args.openvino:
        from containers.rl.export.openvino_ir import convert_to_ir

        xml_path = out / f"{args.name}-openvino" / "model.xml"
        xml = convert_to_ir(result.frozen_graph, result.names, result.input_shape, xml_path)
        print(f"OpenVINO IR {xml}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "validate": _validate, "evaluate": _evaluate, "export": _export}
    try:
        return handlers[args.command](args)
    except ToolkitError as exc:
        print(f"error: {exc.failure_text()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
