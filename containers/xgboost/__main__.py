"""``python -m containers.xgboost train|serve``: the image's ENTRYPOINT.

Only the standard library is imported here; the ``train``/``serve`` functions below import the rest when they run.
Training first sizes the native thread pools (:func:`limit_native_threads`, before numpy and XGBoost's OpenMP load),
then imports XGBoost without its scikit-learn wrappers (:func:`import_xgboost_lean`): ``import xgboost`` otherwise
imports scikit-learn and SciPy's statistics modules (1-2 s of CPU per job) for the ``XGBClassifier`` family that
algorithm mode never uses. Serving in algorithm mode imports it the same way (a restarted stack starts every
endpoint's servers at once). K-fold training imports scikit-learn itself when it needs it; script mode runs the user's
script in its own interpreter, where ``import xgboost`` is the usual one.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from containers.toolkit.entrypoint import exit_process, main_for
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.threads import limit_native_threads
from containers.xgboost import HANDLER

logger = logging.getLogger(__name__)

_HIDDEN_FOR_IMPORT = "sklearn"
# xgboost/__init__ imports these in one try block (ImportError skips them): its plotting helpers import its
# scikit-learn wrapper module, which imports scipy.special (~0.1 s: SciPy parses the docstrings of its array-API
# wrappers). Algorithm mode uses neither; they are imported on first use instead (_lazy_wrappers).
_DEFERRED_SUBMODULES = ("xgboost.plotting",)
_DEFERRED_NAMES = {
    "plot_importance": "xgboost.plotting",
    "plot_tree": "xgboost.plotting",
    "to_graphviz": "xgboost.plotting",
    "XGBModel": "xgboost.sklearn",
    "XGBClassifier": "xgboost.sklearn",
    "XGBRegressor": "xgboost.sklearn",
    "XGBRanker": "xgboost.sklearn",
    "XGBRFClassifier": "xgboost.sklearn",
    "XGBRFRegressor": "xgboost.sklearn",
}


def _lazy_wrappers(name: str) -> object:
    """``xgboost.<name>`` for the names its ``__init__`` skipped: imported when first asked for (PEP 562)."""
    module = _DEFERRED_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'xgboost' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    setattr(sys.modules["xgboost"], name, value)
    return value


def import_xgboost_lean() -> None:
    """Import ``xgboost`` with scikit-learn hidden, so XGBoost skips its optional scikit-learn integration, and
    without its plotting helpers and scikit-learn wrapper classes (``xgboost.XGBClassifier`` and the plotting
    functions still work: they are imported on first use).

    A ``None`` entry in ``sys.modules`` makes an import raise ImportError, which XGBoost treats as "not installed";
    the entries are removed right after, so a later ``import sklearn`` works. Nothing happens when either module is
    already loaded.
    """
    if "xgboost" in sys.modules or _HIDDEN_FOR_IMPORT in sys.modules:
        return
    hidden = [name for name in (_HIDDEN_FOR_IMPORT, *_DEFERRED_SUBMODULES) if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        xgboost = importlib.import_module("xgboost")
    finally:
        for name in hidden:
            del sys.modules[name]
    if not hasattr(xgboost, "XGBModel"):
        xgboost.__getattr__ = _lazy_wrappers  # type: ignore[method-assign]
    logger.debug("xgboost imported without its scikit-learn wrappers")


def warm_up_training() -> None:
    """What a warm-pool host imports before a job claims it (docs/performance.md#warm-pools)."""
    import_xgboost_lean()
    importlib.import_module("containers.xgboost.train")


def _prefetch_train_csv(env: TrainingEnvironment) -> None:
    """A one-host algorithm-mode job with a CSV ``train`` channel reads all of it first thing: start that read now,
    so it runs while XGBoost and SciPy are imported (docs/algorithms/xgboost.md#training). Anything unusual (script
    mode, k-fold, several hosts, Pipe mode, another content type, a malformed channel) is left to the normal path."""
    from containers.toolkit.codecs import CSV, find_channel_files, parse_media_type
    from containers.toolkit.framework.script_mode import is_script_mode

    train = env.channels.get("train")
    if train is None or is_script_mode(env) or len(env.resource.hosts) != 1 or "_kfold" in env.hyperparameters:
        return
    try:
        media = parse_media_type(train.content_type or "")
        if media.type != CSV or train.input_mode.lower() == "pipe" or not train.path.is_dir():
            return
        files = tuple(find_channel_files(train.path))
    except Exception:  # the job's own checks report it, with its message
        return
    if files:
        from containers.xgboost.csv_float32 import prefetch_csv_float32

        prefetch_csv_float32(files)


def _train(env: TrainingEnvironment) -> None:
    limit_native_threads()  # numpy and XGBoost's OpenMP runtime are first loaded just below
    _prefetch_train_csv(env)
    import_xgboost_lean()
    from containers.xgboost.train import train_job

    train_job(env)


def _serve() -> int:
    from containers.toolkit.model_server.serving import serve

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # after numpy's import, as before: XGBoost's predictions only
    if os.environ.get("SAGEMAKER_PROGRAM"):  # framework mode: the user's inference functions
        from containers.toolkit.framework.script_serving import serve_user_script

        return serve_user_script("containers.xgboost.script_serve:XGBoostScriptHandler")
    import_xgboost_lean()  # algorithm mode predicts with a Booster: no scikit-learn (~2.7 s of start-up per server)
    return serve(HANDLER)


if __name__ == "__main__":
    exit_process(main_for(_train, _serve))
