"""The model file per framework version, written as AWS's image of that version writes it and read in any form.

AWS's XGBoost images pickle the Booster before 1.3-1 (0.90-x and 1.0-1 with pickle protocol 3, 1.2-x with protocol
4) and call ``Booster.save_model`` from 1.3-1 on; users load the first with ``pickle.load`` and the second with
``xgboost.Booster().load_model`` (docs/containers.md#xgboost-model-files-per-framework-version). The framework
version is the image tag's (``SAGESTACK_IMAGE_TAG``, set by the runtime from the image URI, as AWS bakes it into each
image); without a tag the newest behaviour applies.

Reading accepts XGBoost's JSON and UBJSON, its removed binary format
(:mod:`containers.xgboost.model_format.legacy_binary`), and a pickled Booster of any XGBoost release, read by an
unpickler that builds nothing but a Booster from its saved state.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost as xgb

from containers.toolkit.errors import ModelLoadError
from containers.xgboost.model_format.legacy_binary import LegacyModelError, load_legacy_binary

logger = logging.getLogger(__name__)

IMAGE_TAG_ENV = "SAGESTACK_IMAGE_TAG"
_VERSION = re.compile(r"^(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:-(?P<build>[0-9]+))?")
FIRST_NATIVE_FORMAT = (1, 3)  # 1.3-1: Booster.save_model
FIRST_PROTOCOL_4 = (1, 2)  # 1.2-1 and 1.2-2: pickle protocol 4
_PICKLE_PREFIX = b"\x80"


@dataclass(frozen=True)
class ModelFormat:
    """How this image writes ``xgboost-model``: ``pickle`` (with ``protocol``) or XGBoost's ``native`` format."""

    kind: str
    protocol: int = 0
    version: str = ""

    @property
    def pickled(self) -> bool:
        return self.kind == "pickle"


NATIVE = ModelFormat("native")


def framework_version(tag: str) -> tuple[int, int] | None:
    """``1.0-1-cpu-py3`` -> (1, 0); ``0.90-2`` -> (0, 90); ``1`` (the 0.72 image) -> (0, 72); other tags -> None."""
    match = _VERSION.match(tag.strip())
    if match is None:
        return None
    if match.group("minor") is None:
        return (0, 72) if match.group("major") == "1" else None  # xgboost:1 is AWS's XGBoost 0.72 image
    return int(match.group("major")), int(match.group("minor"))


def model_format(environ: Mapping[str, str] | None = None) -> ModelFormat:
    """The format of this image's version (``SAGESTACK_IMAGE_TAG``); XGBoost's own format when unknown."""
    tag = (os.environ if environ is None else environ).get(IMAGE_TAG_ENV, "")
    version = framework_version(tag) if tag else None
    if version is None or version >= FIRST_NATIVE_FORMAT:
        return ModelFormat("native", version=tag)
    return ModelFormat("pickle", 4 if version >= FIRST_PROTOCOL_4 else 3, tag)


def _atomic_write(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(raw)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_model(booster: xgb.Booster, path: Path, fmt: ModelFormat = NATIVE) -> None:
    """Write ``booster`` to ``path`` in ``fmt`` through a temporary file and an atomic rename.

    The native format is UBJSON, what ``save_model`` writes for a name without ``.json`` in the XGBoost installed here
    (AWS's 1.3-1 to 1.7-1 images wrote the binary format of their XGBoost, which this XGBoost no longer writes or
    reads; ``Booster.load_model`` reads UBJSON in every XGBoost since 1.6).
    """
    if fmt.pickled:
        raw = pickle.dumps(booster, protocol=fmt.protocol)
    else:
        raw = bytes(booster.save_raw(raw_format="ubj"))
    _atomic_write(path, raw)


class _BoosterState:
    """Stands for ``xgboost.core.Booster`` while unpickling: keeps the saved state, runs nothing."""

    state: dict[str, Any]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class _BoosterUnpickler(pickle.Unpickler):
    """Builds a Booster's saved state and the plain values in it; refuses every other class."""

    _ALLOWED: Mapping[tuple[str, str], Any] = {
        ("builtins", "bytearray"): bytearray,
        ("builtins", "bytes"): bytes,
        ("__builtin__", "bytearray"): bytearray,
    }

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("xgboost") and name == "Booster":
            return _BoosterState
        allowed = self._ALLOWED.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"the pickle holds {module}.{name}, not an XGBoost Booster")
        return allowed


def _booster_from_state(state: Mapping[str, Any]) -> xgb.Booster:
    raw = bytes(state.get("handle") or b"")
    if not raw:
        raise ModelLoadError("the pickled Booster holds no model")
    try:
        booster = xgb.Booster()
        booster.__setstate__({**state, "handle": bytearray(raw)})  # serialisations of XGBoost 1.3 and later
    except xgb.core.XGBoostError:
        booster = load_legacy_binary(raw)  # XGBoost before 1.3: the binary model (after CONFIG-offset: in 1.1-1.2)
        names = state.get("feature_names")
        if names and len(names) == booster.num_features():
            booster.feature_names = list(names)
    best_limit = state.get("best_ntree_limit")
    if booster.attr("best_iteration") is None and isinstance(state.get("best_iteration"), int) and best_limit:
        booster.set_attr(best_iteration=str(state["best_iteration"]))
    return booster


def load_pickled_booster(raw: bytes) -> xgb.Booster:
    loaded = _BoosterUnpickler(io.BytesIO(raw)).load()
    if not isinstance(loaded, _BoosterState):
        raise ModelLoadError(f"the pickle holds a {type(loaded).__name__}, not an XGBoost Booster")
    return _booster_from_state(loaded.state)


def read_model(path: Path) -> xgb.Booster:
    """A Booster from any model file AWS's images or XGBoost releases write; ModelLoadError names the file."""
    raw = path.read_bytes()
    try:
        if raw[:1] == _PICKLE_PREFIX:
            return load_pickled_booster(raw)
        try:
            return xgb.Booster(model_file=bytearray(raw))  # JSON / UBJSON, format detected from the bytes
        except xgb.core.XGBoostError as exc:
            try:
                return load_legacy_binary(raw)
            except LegacyModelError:
                raise ModelLoadError(
                    f"Unable to load model: {path.name} is not an XGBoost model "
                    f"(neither JSON, UBJSON, XGBoost's binary format nor a pickled Booster): {_first_line(exc)}"
                ) from exc
    except ModelLoadError:
        raise
    except (pickle.UnpicklingError, LegacyModelError, EOFError, ValueError, xgb.core.XGBoostError) as exc:
        raise ModelLoadError(f"Unable to load model: {path.name}: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
