"""Typed configuration: one dataclass per task, TOML presets, ``--set a.b=value`` overrides, validation.

A task config is a dataclass whose fields are sections (``data``, ``model``, ``train``, ...), each a
dataclass of plain fields. Every field may carry ``metadata`` with ``choices``, ``min`` and ``max``;
``validate`` checks types and ranges and raises :class:`ConfigError` naming the key, the value and what
is allowed. Presets live in the package, ``neuralsight/configs/<name>.toml``; a preset's optional ``[quick]`` table holds dotted
overrides applied by ``--quick`` (tiny budgets for smoke runs and the demo).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from neuralsight.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib



def choice(default: Any, choices: tuple, help: str = "") -> Any:
    return field(default=default, metadata={"choices": choices, "help": help})


def bounded(default: Any, min: float | None = None, max: float | None = None, help: str = "") -> Any:
    return field(default=default, metadata={"min": min, "max": max, "help": help})


@dataclass
class TrainConfig:
    """Options of the one training loop (engine/trainer.py), shared by every task."""

    epochs: int = bounded(10, min=0, help="passes over the training set (0: use steps)")
    steps: int = bounded(0, min=0, help="optimizer steps; overrides epochs when > 0")
    max_time: float = bounded(0.0, min=0, help=(
        "wall-clock training budget in seconds (0: none). It covers the training loop with its periodic "
        "evaluations and checkpoint saves, and the closing validation evaluation; not the data and model set-up "
        "before it nor the task's test evaluation after it. The loop stops before a step or an evaluation "
        "would cross it, from measured step and evaluation times"))
    batch_size: int = bounded(128, min=1)
    lr: float = bounded(1e-3, min=0)
    weight_decay: float = bounded(0.0, min=0)
    optimizer: str = choice("adamw", ("adamw", "adam", "sgd"))
    momentum: float = bounded(0.9, min=0, max=1)
    schedule: str = choice("cosine", ("cosine", "onecycle", "constant"))
    warmup: float = bounded(0.05, min=0, help="warmup: a fraction of all steps if < 1, else a step count")
    grad_clip: float = bounded(1.0, min=0, help="max gradient norm (0: off)")
    ema: float = bounded(0.0, min=0, max=0.999999, help=(
        "decay of an exponential moving average of the weights, e.g. 0.999 (0: off); evaluation and the best "
        "checkpoint use the averaged weights"))
    eval_every: int = bounded(0, min=0, help="evaluate every N steps (0: once per epoch)")
    patience: int = bounded(0, min=0, help="early stopping after N evaluations without improvement (0: off)")
    log_every: int = bounded(10, min=1)
    seed: int = 0
    deterministic: bool = False
    device: str = choice("auto", ("auto", "cpu", "cuda", "mps"))
    precision: str = choice("auto", ("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = True
    compile: bool = False
    threads: int = bounded(0, min=0, help="torch CPU threads (0: torch's default)")
    progress: bool = True


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; int -> float is the only silent conversion."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}' = {value!r} is not allowed; expected one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' = {value!r} must be a list, e.g. {key}=[1, 2]")
        inner = args[0] if args else Any
        return [_coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' = {value!r} must be a table")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' = {value!r} must be true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}' = {value!r} must be an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key '{key}' = {value!r} must be a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}' = {value!r} must be a string (quote it)")
    raise ConfigError(f"config key '{key}' has an unsupported type {_type_name(tp)}")


def _check_range(key: str, value: Any, meta: typing.Mapping) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed; expected one of {list(choices)}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(f"config key '{key}' = {value!r} is too small; expected >= {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key '{key}' = {value!r} is too large; expected <= {hi}")


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; allowed keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):
            # A partial section keeps the defaults the parent gives it (its default_factory), not only the
            # section class's own defaults.
            base = _field_default(fields[name])
            if base is not None and isinstance(value, dict):
                value = merge(to_dict(base), value)
            kwargs[name] = from_dict(tp, value, prefix=f"{key}.")
        else:
            kwargs[name] = _coerce(key, value, tp)
            _check_range(key, kwargs[name], fields[name].metadata)
    obj = cls(**kwargs)
    validate(obj, prefix)
    return obj


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    if f.default is not dataclasses.MISSING:
        return f.default
    return None


def validate(obj: Any, prefix: str = "") -> None:
    """Check every field of a (possibly nested) config dataclass; raise ConfigError on the first problem."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate(value, prefix=f"{key}.")
        else:
            _coerce(key, value, hints[f.name])
            _check_range(key, value, f.metadata)
    post = getattr(obj, "check", None)
    if callable(post):
        post()


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value`` as a TOML value, falling back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{key}': '{part}' is a value, not a section")
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set '{item}' must look like section.key=value, e.g. train.lr=0.001")
        key, text = item.split("=", 1)
        out.append((key.strip(), parse_value(text.strip())))
    return out


def load_toml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing TOML file, or --preset NAME")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def preset_dir():
    """The presets shipped inside the package (``neuralsight/configs/*.toml``), wherever it is installed."""
    from importlib.resources import files

    return files("neuralsight") / "configs"


def list_presets() -> list[str]:
    return sorted(p.name[:-5] for p in preset_dir().iterdir() if p.name.endswith(".toml"))


def preset_path(name: str) -> Path:
    """The file of preset ``name``; a :class:`ConfigError` listing the presets when there is none."""
    path = Path(str(preset_dir() / f"{name}.toml"))
    if not path.is_file():
        raise ConfigError(f"preset '{name}' not found", f"available presets: {', '.join(list_presets())}")
    return path


def build(cls: type, preset: str | None = None, file: Path | None = None,
          overrides: list[str] | tuple = (), quick: bool = False) -> Any:
    """Resolve a task config: dataclass defaults < preset < --config file < --quick < --set overrides."""
    data: dict = {}
    quick_items: dict = {}
    for path in [preset_path(preset) if preset else None, file]:
        if path is None:
            continue
        loaded = load_toml(path)
        quick_items = merge(quick_items, loaded.pop("quick", {}))
        data = merge(data, loaded)
    if quick:
        for key, value in _flatten(quick_items):
            set_dotted(data, key, value)
    for key, value in parse_overrides(list(overrides)):
        set_dotted(data, key, value)
    return from_dict(cls, data)


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out


def dump_toml(data: dict) -> str:
    """Write a nested dict of plain values as TOML (tables for nested dicts, None omitted)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} to TOML")

    def table(d: dict, name: str) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict) and v is not None}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        if name and plain:
            lines.append(f"[{name}]")
        for k, v in plain.items():
            lines.append(f"{k} = {scalar(v)}")
        if plain:
            lines.append("")
        for k, v in nested.items():
            table(v, f"{name}.{k}" if name else k)

    table(data, "")
    return "\n".join(lines)
