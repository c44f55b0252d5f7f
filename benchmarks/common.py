"""Shared benchmark machinery: one result schema, one ``met`` rule, and runs that cannot lie (issue 11).

Every ``benchmarks/<name>.py`` builds its result through :class:`Benchmark` and writes
``<name>-<hardware>.json`` (DESIGN.md "Benchmarks")::

    {"benchmark", "date", "git" (40 hex), "git_dirty", ["allow_dirty", "git_status"], "hardware": {"device",
     "cpu", "threads", "loadavg_start", "loadavg_end", ...}, "command",
     "targets": [{"name", "target" (a rule such as ">= 0.93"), "measured", "met", ["from" | "numerator",
                  "denominator", "equal_time"], ...}],
     "runs": [{"id", "name", "seed", "stopped_by", "steps", "train_seconds", "wall_seconds", ...}], ...extra}

What holds for every file, checked by :func:`validate_result` before anything is written and again by the
tests over every committed file:

- ``met`` is :func:`met` of the rule and the measurement, nothing else; a target that names the runs it is
  computed from (``from``, or ``numerator`` / ``denominator`` for a ratio) is recomputed from them.
- Every run records ``stopped_by`` (``budget``, ``steps``, ``epochs`` or ``early_stop``; a run stopped by a
  signal, a timeout or an error raises :class:`BenchmarkError`, so the benchmark exits non-zero and writes
  nothing), ``steps``, ``train_seconds`` (time inside training steps, evaluation excluded) and
  ``wall_seconds`` (the training loop from its first step to its stop, evaluations included), measured the
  same way for ours (the engine, through ``neuralsight train``: :func:`run_ours`) and for peers
  (:func:`timed_loop`).
- A ratio at "equal time" has the training seconds of all its runs within 5 % of each other
  (``equal_time``: the seconds, their spread and the tolerance are in the file), and a ratio compares as
  many seeds of the peer as of ours.
- ``git`` is the full hash of the commit the benchmark ran from, on a clean tree; a dirty tree refuses
  unless ``--allow-dirty``, which the file records with the ``git status`` lines.

Where results go: without ``--write`` a benchmark writes ``runs/benchmarks/<name>-<hardware>.json``
(``runs/`` is git-ignored), so ``make bench`` and trial runs never overwrite the committed
``benchmarks/results/``; ``--write`` writes there (``--out PATH`` anywhere). ``benchmarks/readme_table.py``
renders the README's results table from the committed files; ``benchmarks/mark_invalid.py`` marks a
file whose claims are withdrawn.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
UNSAVED = ROOT / "runs" / "benchmarks"
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

VALID_STOPS = ("budget", "steps", "epochs", "early_stop")
EQUAL_TIME_TOLERANCE = 0.05
RUN_FIELDS = ("id", "name", "seed", "stopped_by", "steps", "train_seconds", "wall_seconds")
TOP_LEVEL = ("benchmark", "date", "git", "git_dirty", "hardware", "command", "targets", "runs")
_RULE = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class BenchmarkError(Exception):
    """A run or a result that must not be recorded; the benchmark exits non-zero and writes nothing."""


# ---- rules ----------------------------------------------------------------------------------------------

def parse_rule(rule: str) -> tuple[str, float]:
    """``">= 0.93"`` -> ``(">=", 0.93)``; operators ``>=``, ``<=``, ``>``, ``<``."""
    m = _RULE.match(rule) if isinstance(rule, str) else None
    if not m:
        raise ValueError(f"target rule {rule!r} is not '<op> <number>' with op one of >=, <=, >, < "
                         "(e.g. '>= 0.93'); put conditions such as a time budget into the measurement")
    return m.group(1), float(m.group(2))


def met(rule: str, measured: float | None) -> bool:
    """Whether ``measured`` satisfies ``rule``; nothing measured (None or NaN) is not met."""
    op, goal = parse_rule(rule)
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        return False
    value = float(measured)
    return {">=": value >= goal, "<=": value <= goal, ">": value > goal, "<": value < goal}[op]


def _lookup(record: dict, key: str):
    """``record["a"]["b"]`` for ``key="a.b"``; None when any part is missing."""
    value = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _statistic(runs: Sequence[dict], key: str, statistic: str = "median") -> float | None:
    values = [_lookup(r, key) for r in runs]
    if not values or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        return None
    if statistic == "median":
        return float(statistics.median(values))
    if statistic == "mean":
        return float(statistics.fmean(values))
    raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")


def target(name: str, rule: str, measured: float | None, **extra) -> dict:
    """A target row of a directly measured value: ``{"name", "target", "measured", "met", **extra}``."""
    value = None if measured is None or math.isnan(float(measured)) else float(measured)
    return {"name": name, "target": rule, "measured": value, "met": met(rule, value), **extra}


def target_from_runs(name: str, rule: str, runs: Sequence[dict], key: str = "value",
                     statistic: str = "median", **extra) -> dict:
    """A target measured as the median (or mean) of ``key`` over ``runs``; the file names the runs."""
    spec = {"runs": [r["id"] for r in runs], "key": key, "statistic": statistic}
    return target(name, rule, _statistic(runs, key, statistic), **{"from": spec, **extra})


def ratio_target(name: str, rule: str, ours: Sequence[dict], peer: Sequence[dict], key: str = "value",
                 statistic: str = "median", equal_time: bool = True, **extra) -> dict:
    """``statistic(ours[key]) / statistic(peer[key])``, the file naming both sets of runs.

    With ``equal_time`` (the default) the training seconds of every run involved must lie within
    :data:`EQUAL_TIME_TOLERANCE` of each other, and the file shows them; otherwise this raises
    :class:`BenchmarkError`. Ours and the peer must have run the same number of seeds.
    """
    if len(ours) != len(peer):
        raise BenchmarkError(f"{name}: {len(ours)} runs of ours against {len(peer)} of the peer; "
                             "run the peer for as many seeds as ours")
    num, den = _statistic(ours, key, statistic), _statistic(peer, key, statistic)
    row = {"numerator": {"runs": [r["id"] for r in ours], "key": key, "statistic": statistic, "value": num},
           "denominator": {"runs": [r["id"] for r in peer], "key": key, "statistic": statistic, "value": den}}
    if equal_time:
        row["equal_time"] = equal_time_check([*ours, *peer])
        if not row["equal_time"]["within"]:
            seconds = row["equal_time"]["train_seconds"]
            raise BenchmarkError(f"{name}: training seconds {seconds} differ by more than "
                                 f"{EQUAL_TIME_TOLERANCE:.0%}; not an equal-time comparison")
    measured = num / den if num is not None and den not in (None, 0.0) else None
    return target(name, rule, measured, **row, **extra)


def at_budget(row: dict, nominal: float | None, used: float | None, what: str = "budget") -> dict:
    """``row`` (a target) as measured at ``used`` seconds, against the ``nominal`` seconds its name or rule assumes.

    At the nominal budget (within 1 %) the row is returned with ``nominal_budget_seconds`` and ``budget_seconds``
    added. At another budget (a smoke run, a trial) the measurement does not speak to the target: ``measured``
    becomes None and ``met`` False, ``comparable`` False with the ``reason``, and what was measured is kept as
    ``measured_at_budget`` (with its run specs under ``computed_from``, so the validator does not recompute it).
    """
    row = {**row, "nominal_budget_seconds": nominal, "budget_seconds": used}
    same = (nominal is None and used is None) or (
        nominal is not None and used is not None and math.isclose(float(nominal), float(used), rel_tol=0.01))
    if same:
        return row
    spec = {k: row.pop(k) for k in ("from", "numerator", "denominator", "equal_time") if k in row}
    shown = lambda s: "the preset's own" if s is None else f"{s:g} s"  # noqa: E731
    return {**row, "measured": None, "met": False, "comparable": False, "measured_at_budget": row["measured"],
            **({"computed_from": spec} if spec else {}),
            "reason": f"measured at {what} {shown(used)}, not the target's nominal {shown(nominal)}: not comparable"}


def not_run(name: str, rule: str, reason: str, **extra) -> dict:
    """A target this invocation did not measure (its runs were skipped): ``measured`` None, ``met`` False."""
    return {**target(name, rule, None, **extra), "comparable": False, "reason": reason}


def equal_time_check(runs: Sequence[dict], tolerance: float = EQUAL_TIME_TOLERANCE) -> dict:
    """``{"train_seconds": [...], "spread": (max - min) / max, "tolerance", "within"}`` over ``runs``."""
    seconds = [float(r["train_seconds"]) for r in runs]
    spread = (max(seconds) - min(seconds)) / max(seconds) if seconds and max(seconds) > 0 else math.inf
    return {"train_seconds": seconds, "spread": spread, "tolerance": tolerance, "within": spread <= tolerance}


# ---- runs -----------------------------------------------------------------------------------------------

def run_id(name: str, seed: int) -> str:
    return f"{name}/seed{seed}"


def check_run(run: dict) -> dict:
    """Raise :class:`BenchmarkError` unless ``run`` holds every field and stopped on its own; returns it."""
    missing = [k for k in RUN_FIELDS if k not in run]
    if missing:
        raise BenchmarkError(f"run {run.get('id', '?')} lacks {', '.join(missing)}")
    if run["stopped_by"] not in VALID_STOPS:
        raise BenchmarkError(f"run {run['id']} stopped by {run['stopped_by']!r}"
                             f"{': ' + run['error'] if run.get('error') else ''}; a run stopped by a signal, "
                             "a timeout or an error is not a measurement: nothing written")
    return run


def run_ours(task: str, seed: int, max_time: float | None, *, preset: str | None = None, name: str | None = None,
             overrides: Sequence[str] = (), args: Sequence[str] = (), device: str | None = None,
             metric: str = "headline.value", timeout: float | None = None, runs_root: Path | None = None,
             env: dict | None = None, program: Sequence[str] | None = None) -> dict:
    """Train ``task`` as a user would: ``neuralsight train TASK --preset P --max-time S --seed N`` in a
    subprocess (this checkout's ``src`` first on ``PYTHONPATH``), then read the run's ``summary.json``.

    Args:
        task: ``classify``, ``textgen``, ``segment``, ``segment3d`` or ``forecast``.
        seed: ``--seed``.
        max_time: ``--max-time`` seconds (None: the preset's own budget).
        preset: ``--preset`` (None: the task's default).
        name: the run's label in the result file (default: the preset or the task).
        overrides: ``--set`` values.
        args: further CLI arguments, e.g. ``["--quick"]``.
        device: ``--device``.
        metric: dotted path into ``summary.json`` giving the run's ``value``.
        timeout: seconds before the process is killed (default ``3 * max_time + 900``); a killed run raises.
        runs_root: keep the run directory there (default: a temporary folder, removed).
        env: extra environment variables for the process.
        program: the command before ``train`` (default ``python -m neuralsight``; tests pass a script
            with a toy task registered).

    Returns:
        The run record: ``id``, ``name``, ``kind`` ("ours"), ``seed``, ``budget_seconds``, ``stopped_by``,
        ``steps``, ``train_seconds``, ``wall_seconds`` (the engine's, from ``summary.json``),
        ``process_seconds``, ``items_per_second``, ``metric``, ``value``, ``metrics``, ``precision``,
        ``command`` and ``run_dir`` when kept. Raises :class:`BenchmarkError` on a run that did not stop
        by itself.
    """
    label = name or preset or task
    program = list(program) if program is not None else [sys.executable, "-m", "neuralsight"]
    command = [*program, "train", task, "--seed", str(seed), "--no-progress"]
    if preset:
        command += ["--preset", preset]
    if max_time is not None:
        command += ["--max-time", f"{max_time:g}"]
    if device:
        command += ["--device", device]
    for value in overrides:
        command += ["--set", value]
    command += list(args)
    limit = timeout if timeout is not None else 3 * (max_time or 300.0) + 900.0
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [child_env.get("PYTHONPATH")])])
    keep = runs_root is not None
    out = Path(runs_root) if keep else Path(tempfile.mkdtemp(prefix="bench-ours-"))
    out.mkdir(parents=True, exist_ok=True)
    before = {p.parent for p in out.glob("*/*/summary.json")}
    record = {"id": run_id(label, seed), "name": label, "kind": "ours", "seed": seed, "budget_seconds": max_time,
              "command": " ".join(["neuralsight", *command[len(program):], "--out", str(out)])}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=limit,
                              env=child_env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        record.update(stopped_by="timeout", error=f"killed after {limit:.0f} s")
        return check_run({**record, "steps": 0, "train_seconds": 0.0, "wall_seconds": 0.0})
    record["process_seconds"] = time.perf_counter() - t0
    record["returncode"] = proc.returncode
    try:
        if proc.returncode != 0:
            signalled = proc.returncode < 0 or proc.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            record.update(stopped_by="signal" if signalled else "error",
                          error=f"exit {proc.returncode}: " + " | ".join(tail))
            return check_run({**record, "steps": 0, "train_seconds": 0.0, "wall_seconds": 0.0})
        new = [p for p in out.glob("*/*/summary.json") if p.parent not in before]
        if len(new) != 1:
            raise BenchmarkError(f"{record['command']}: expected one new run directory under {out}, found {len(new)}")
        summary = json.loads(new[0].read_text())
        fit = summary.get("fit") or {}
        record.update(stopped_by=fit.get("stopped_by") or "error", steps=fit.get("step"),
                      train_seconds=fit.get("train_seconds"), wall_seconds=fit.get("wall_seconds"),
                      items_per_second=fit.get("items_per_second"),
                      metric=(summary.get("headline") or {}).get("name") if metric == "headline.value" else metric,
                      value=_lookup(summary, metric),
                      metrics=summary.get("metrics"), precision=summary.get("precision"),
                      params=summary.get("params"))
        if keep:
            record["run_dir"] = str(new[0].parent)
        return check_run(record)
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


class _Signals:
    """SIGINT / SIGTERM set a flag (the loop stops at the next step) instead of killing the process."""

    def __enter__(self):
        self.received = None
        self._old = {}
        with contextlib.suppress(ValueError):  # not the main thread: leave the handlers alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def timed_loop(step: Callable[[float], object], budget_seconds: float, *, max_steps: int = 0,
               synchronize: Callable[[], None] | None = None, evaluate: Callable[[], object] | None = None,
               eval_every_seconds: float = 0.0) -> dict:
    """A peer's plain training loop on a wall-clock budget, timed the way the engine times ours.

    Calls ``step(budget_fraction)`` (one optimizer step; ``budget_fraction`` is the share of the budget
    used so far, 0..1, for a schedule that follows the budget as the engine's does) until the seconds spent
    inside steps reach ``budget_seconds`` (or ``max_steps`` steps, if > 0; ``budget_seconds=math.inf``
    for a step count alone). To compare at equal time, give a peer the median ``train_seconds`` of the runs
    of ours it is compared with (the engine's ``--max-time`` is a wall-clock budget, evaluations included).
    ``evaluate()``, if given, runs every ``eval_every_seconds`` of
    training and is not training time. ``synchronize`` (``torch.cuda.synchronize`` on a GPU) runs after
    every step so asynchronous kernels are timed where they run. SIGINT / SIGTERM stop the loop; the
    record then says ``stopped_by="signal"`` and :func:`check_run` rejects it. An exception in ``step``
    propagates (the benchmark exits non-zero).

    Returns:
        ``{"stopped_by", "steps", "train_seconds", "wall_seconds", "budget_seconds"}``: merge it into the
        peer's run record.
    """
    sync = synchronize or (lambda: None)
    steps, train_seconds, next_eval = 0, 0.0, eval_every_seconds or math.inf
    start = time.perf_counter()
    with _Signals() as signals:
        while True:
            if signals.received is not None:
                stopped_by = "signal"
                break
            if train_seconds >= budget_seconds:
                stopped_by = "budget"
                break
            if max_steps and steps >= max_steps:
                stopped_by = "steps"
                break
            t0 = time.perf_counter()
            step(min(train_seconds / budget_seconds, 1.0) if math.isfinite(budget_seconds) else 0.0)
            sync()
            train_seconds += time.perf_counter() - t0
            steps += 1
            if evaluate is not None and train_seconds >= next_eval:
                evaluate()
                next_eval += eval_every_seconds
    return {"stopped_by": stopped_by, "steps": steps, "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - start, "budget_seconds": budget_seconds}


def recipe_loop(task, model, env, train_cfg, budget_seconds: float, *, evaluate: Callable | None = None,
                monitor: str | None = None, mode: str = "max", evaluations: int = 8) -> dict:
    """A peer ``model`` trained on a task adapter's batches and loss by our recipe, outside the engine.

    ``task`` is an engine ``TrainTask`` (``train_size``, ``get_batch``, ``training_step``): the peer sees the
    same data, augmentation and loss as ours. The optimizer (:func:`~neuralsight.engine.trainer.build_optimizer`),
    the learning-rate schedule over the budget's fraction (``lr_at`` with ``max_time = budget_seconds``), the
    gradient clipping and the precision (``env.autocast``) are the engine's. :func:`timed_loop` times it like
    ours (training seconds exclude evaluation). With ``evaluate(model) -> metrics`` the model is scored on the
    validation split ``evaluations`` times over the budget and once at the end, and the weights that scored
    best on ``monitor`` are loaded back (checkpoint selection on val, as the engine does).

    Returns:
        :func:`timed_loop`'s record plus ``best_val`` (the monitor's best value) and ``evaluations``.
    """
    import copy
    import dataclasses

    import torch

    from neuralsight.engine.trainer import apply_lr, build_optimizer, lr_at

    cfg = dataclasses.replace(train_cfg, max_time=float(budget_seconds), steps=0, epochs=0)
    optimizer = build_optimizer(model, cfg)
    n = task.train_size()
    batch = max(1, min(cfg.batch_size, n))
    g = torch.Generator().manual_seed(int(cfg.seed))
    state = {"step": 0, "perm": torch.randperm(n, generator=g), "pos": 0, "best": None, "weights": None, "evals": 0}

    def indices():  # epochs of shuffled indices, as the engine draws them
        if state["pos"] + batch > n:
            state["perm"], state["pos"] = torch.randperm(n, generator=g), 0
        idx = state["perm"][state["pos"]:state["pos"] + batch]
        state["pos"] += batch
        return idx

    def step(fraction: float) -> None:
        multiplier, momentum = lr_at(cfg, state["step"], None, fraction * cfg.max_time)
        apply_lr(optimizer, cfg, multiplier, momentum)
        model.train()
        with env.autocast():
            loss = task.training_step(model, task.get_batch(indices()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        state["step"] += 1

    def evaluate_now() -> None:
        model.eval()
        with torch.no_grad(), env.autocast():
            value = float(evaluate(model)[monitor])
        state["evals"] += 1
        if not math.isnan(value) and (state["best"] is None or (value > state["best"] if mode == "max"
                                                                 else value < state["best"])):
            state["best"], state["weights"] = value, copy.deepcopy(model.state_dict())

    sync = torch.cuda.synchronize if env.device.type == "cuda" else None
    loop = timed_loop(step, budget_seconds, synchronize=sync, evaluate=evaluate_now if evaluate else None,
                      eval_every_seconds=budget_seconds / max(1, evaluations))
    if evaluate is not None:
        evaluate_now()
        if state["weights"] is not None:
            model.load_state_dict(state["weights"])
    model.eval()
    return {**loop, "best_val": state["best"], "monitor": monitor, "evaluations": state["evals"],
            "items_per_second": loop["steps"] * batch / max(loop["train_seconds"], 1e-9)}


def peer_run(name: str, seed: int, loop: dict, value: float | None, metric: str, **extra) -> dict:
    """A peer's run record from a :func:`timed_loop` result and its measured ``value``; checked."""
    return check_run({"id": run_id(name, seed), "name": name, "kind": "peer", "seed": seed, **loop,
                      "metric": metric, "value": value, **extra})


# ---- FLOPs utilisation ----------------------------------------------------------------------------------

def training_flops_per_item(model, inputs: Sequence, loss: Callable | None = None) -> float:
    """FLOPs of one training step (forward + backward) per item, counted by ``torch.utils.flop_counter``.

    Args:
        model: the network, in training mode for the count (restored afterwards).
        inputs: the positional inputs of one batch; the first one's leading size is the batch size.
        loss: ``loss(output) -> scalar``; default ``output.float().sum()`` (the loss itself is negligible).

    The count is the matmul and convolution FLOPs torch's counter knows (elementwise ops are not counted),
    the convention of model-FLOPs utilisation. Gradients the count leaves are zeroed.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train()
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(*inputs)
            value = loss(out) if loss is not None else out.float().sum()
            value.backward()
        total = counter.get_total_flops()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    batch = int(inputs[0].shape[0]) if isinstance(inputs[0], torch.Tensor) else 1
    return float(total) / batch


def model_from_run(run_dir: Path, tag: str = "best"):
    """The model a run trained, rebuilt from its checkpoint's saved spec (for counting its FLOPs)."""
    from neuralsight.engine.checkpoint import load_weights, read_state
    from neuralsight.models import create_model

    checkpoints = Path(run_dir) / "checkpoints"
    spec = read_state(checkpoints, tag)["model"]
    model = create_model(spec["name"], **spec["kwargs"])
    load_weights(model, checkpoints, tag)
    return model


def matmul_peak(device: str = "cpu", dtype: str = "bfloat16", size: int | None = None, repeats: int = 7) -> dict:
    """This machine's measured matmul throughput: the median of ``repeats`` timed ``size x size`` matmuls.

    Returns:
        ``{"flops_per_second", "dtype", "size", "repeats", "threads", "device", "samples"}``; the
        denominator of :func:`flops_utilisation`.
    """
    import torch

    dev = torch.device(device)
    n = size or (8192 if dev.type == "cuda" else 2048)
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dev, dt)
    b = torch.randn(n, n, generator=g).to(dev, dt)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(2):                        # warm-up: thread pool, kernels, caches
        a @ b
    sync()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        samples.append(2.0 * n**3 / (time.perf_counter() - t0))
    return {"flops_per_second": float(statistics.median(samples)), "dtype": dtype, "size": n, "repeats": repeats,
            "threads": torch.get_num_threads(), "device": str(dev), "samples": samples}


def flops_utilisation(flops_per_item: float, items_per_second: float, peak_flops_per_second: float) -> dict:
    """Model-FLOPs utilisation: ``flops_per_item * items_per_second / peak``, with its inputs (for a run)."""
    return {"flops_per_item": float(flops_per_item), "items_per_second": float(items_per_second),
            "peak_flops_per_second": float(peak_flops_per_second),
            "flops_utilisation": float(flops_per_item) * float(items_per_second) / float(peak_flops_per_second)}


# ---- git, hardware --------------------------------------------------------------------------------------

def _git(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)


def git_state(allow_dirty: bool = False, root: Path = ROOT) -> dict:
    """``{"git": <40-hex HEAD>, "git_dirty": bool}`` (+ ``allow_dirty``, ``git_status`` when dirty).

    A tree with modified or untracked (not ignored) files refuses with :class:`BenchmarkError` unless
    ``allow_dirty``. Outside a git checkout (a copied tree on a lent machine), ``NEURALSIGHT_GIT_COMMIT``
    names the commit it was copied from; such a tree cannot be shown clean, so it needs ``allow_dirty``.
    """
    try:
        head = _git("rev-parse", "HEAD", root=root)
        status = _git("status", "--porcelain", "--untracked-files=normal", root=root)
        ok = head.returncode == 0 and status.returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if ok:
        sha, lines = head.stdout.strip(), [ln for ln in status.stdout.splitlines() if ln.strip()]
    else:
        sha, lines = os.environ.get("NEURALSIGHT_GIT_COMMIT", ""), ["(not a git checkout: commit from NEURALSIGHT_GIT_COMMIT)"]
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise BenchmarkError(f"cannot name the commit ({sha or 'no git'}): run from a git checkout, or set "
                             "NEURALSIGHT_GIT_COMMIT to the full hash the tree was copied from (with --allow-dirty)")
    state = {"git": sha, "git_dirty": bool(lines)}
    if lines:
        if not allow_dirty:
            raise BenchmarkError(f"the tree has {len(lines)} uncommitted change(s) ({lines[0].strip()} ...): "
                                 "commit them, or pass --allow-dirty (recorded in the result file)")
        state.update(allow_dirty=True, git_status=lines[:50])
    return state


def loadavg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def hardware(device) -> dict:
    """Device, CPU, threads, torch version, GPU name (if any), core count and the current load average."""
    from neuralsight.engine.device import describe_hardware

    info = describe_hardware(device)
    info["cpu_count"] = os.cpu_count()
    info["loadavg"] = loadavg()
    return info


def hardware_tag(device, requested: str = "auto") -> str:
    if requested not in ("auto", ""):
        return requested
    from neuralsight.engine.device import hardware_tag as tag

    return tag(device)


def median(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else None


# ---- the command line -----------------------------------------------------------------------------------

def parser(doc: str, compares: str) -> argparse.ArgumentParser:
    """The standard benchmark parser: ``--help`` opens with what the benchmark compares.

    Args:
        doc: the script's module docstring (first line: the title; the rest: details and usage).
        compares: one sentence: ours against whom, on what, at which budget, judged by which metric.
    """
    title, _, rest = (doc or "").strip().partition("\n")
    p = argparse.ArgumentParser(description=f"{title}\n\nCompares: {compares}\n{rest}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hardware", default="auto", help="tag of the result file: auto (from the device), cpu, h100, ...")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--seeds", type=int, default=3, help="seeds for ours and for every peer (median reported)")
    p.add_argument("--write", action="store_true",
                   help=f"write into {RESULTS.relative_to(ROOT)}/ (default: {UNSAVED.relative_to(ROOT)}/, git-ignored)")
    p.add_argument("--out", type=Path, default=None, help="write the result file here instead")
    p.add_argument("--allow-dirty", action="store_true",
                   help="run from a tree with uncommitted changes (recorded in the file)")
    return p


def command_line(argv: Sequence[str] | None = None) -> str:
    script = os.path.relpath(sys.argv[0], ROOT) if sys.argv and sys.argv[0] else "benchmarks/?.py"
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])


class Benchmark:
    """One benchmark invocation: checks the tree first, then validates and writes the result at the end.

    Args:
        name: the benchmark's name (``fashion_mnist``, ...): the file is ``<name>-<hardware>.json``.
        args: parsed :func:`parser` arguments (``hardware``, ``write``, ``out``, ``allow_dirty``).
        device: the torch device measured on.
    """

    def __init__(self, name: str, args: argparse.Namespace, device, argv: Sequence[str] | None = None):
        self.name, self.args, self.device = name, args, device
        self.git = git_state(args.allow_dirty)              # refuse before hours of training, not after
        self.command = command_line(argv)
        self.loadavg_start = loadavg()
        self.tag = hardware_tag(device, args.hardware)

    def path(self) -> Path:
        if self.args.out is not None:
            return Path(self.args.out)
        return (RESULTS if self.args.write else UNSAVED) / f"{self.name}-{self.tag}.json"

    def document(self, targets: list[dict], runs: list[dict], **extra) -> dict:
        hw = hardware(self.device)
        hw["loadavg_start"] = self.loadavg_start
        hw["loadavg_end"] = hw.pop("loadavg")
        return {"benchmark": self.name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self.git, "hardware": hw,
                "command": self.command, "targets": targets, "runs": runs, **extra}

    def write(self, targets: list[dict], runs: list[dict], **extra) -> Path:
        """Validate and write atomically; :class:`BenchmarkError` (nothing written) on any problem."""
        from neuralsight.io import atomic_write_json

        doc = self.document(targets, runs, **extra)
        problems = validate_result(doc)
        now = git_state(allow_dirty=True)
        if now["git"] != self.git["git"] or (now["git_dirty"] and not self.git["git_dirty"]):
            problems.append(f"the tree changed while the benchmark ran (started at {self.git['git']}, "
                            f"now {now['git']}{' with changes' if now['git_dirty'] else ''})")
        if problems:
            raise BenchmarkError("refusing to write the result:\n  " + "\n  ".join(problems))
        path = self.path()
        atomic_write_json(path, doc)
        return path


def main(run: Callable[[], object]) -> None:
    """Run a benchmark's ``run()``; :class:`BenchmarkError` or a signal -> message and exit status 2."""
    def stop(signum, frame):
        raise BenchmarkError(f"stopped by signal {signum}: nothing written")

    signal.signal(signal.SIGTERM, stop)
    try:
        run()
    except BenchmarkError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("benchmark: interrupted: nothing written", file=sys.stderr)
        raise SystemExit(130) from None


# ---- validation (the writer and the tests use the same function) ----------------------------------------

def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_spec(where: str, spec, by_id: dict, problems: list[str]) -> tuple[float | None, list[dict]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list):
        problems.append(f"{where}: needs {{'runs': [run ids], 'key', 'statistic'}}")
        return None, []
    unknown = [i for i in spec["runs"] if i not in by_id]
    if unknown or not spec["runs"]:
        problems.append(f"{where}: names runs not in the file: {unknown or 'none'}")
        return None, []
    runs = [by_id[i] for i in spec["runs"]]
    try:
        value = _statistic(runs, spec.get("key", "value"), spec.get("statistic", "median"))
    except ValueError as err:
        problems.append(f"{where}: {err}")
        return None, runs
    if "value" in spec and not _close(spec["value"], value):
        problems.append(f"{where}: records {spec['value']} but its runs give {value}")
    return value, runs


def validate_result(doc: dict) -> list[str]:
    """Every reason ``doc`` is not a result file this project may quote; empty when it is one."""
    problems: list[str] = []
    missing = [k for k in TOP_LEVEL if k not in doc]
    if missing:
        problems.append(f"top level lacks {', '.join(missing)}")
    git = doc.get("git")
    if not (isinstance(git, str) and re.fullmatch(r"[0-9a-f]{40}", git)):
        problems.append(f"git is {git!r}, not the full 40-character hash of the commit")
    if doc.get("git_dirty") and not doc.get("allow_dirty"):
        problems.append("git_dirty without allow_dirty: a dirty tree must be allowed explicitly")
    hw = doc.get("hardware")
    if not isinstance(hw, dict) or any(k not in hw for k in ("device", "cpu", "threads")):
        problems.append("hardware lacks device, cpu or threads")
    runs = doc.get("runs") if isinstance(doc.get("runs"), list) else []
    by_id: dict[str, dict] = {}
    for i, run in enumerate(runs):
        label = run.get("id", f"#{i}") if isinstance(run, dict) else f"#{i}"
        if not isinstance(run, dict):
            problems.append(f"run {label} is not an object")
            continue
        absent = [k for k in RUN_FIELDS if k not in run]
        if absent:
            problems.append(f"run {label} lacks {', '.join(absent)}")
            continue
        if label in by_id:
            problems.append(f"run id {label} appears twice")
        by_id[label] = run
        if run["stopped_by"] not in VALID_STOPS:
            problems.append(f"run {label} stopped by {run['stopped_by']!r}, not one of {', '.join(VALID_STOPS)}")
        if not (isinstance(run["steps"], int) and run["steps"] > 0):
            problems.append(f"run {label} steps {run['steps']!r} is not a positive integer")
        if not (_number(run["train_seconds"]) and run["train_seconds"] > 0 and _number(run["wall_seconds"])):
            problems.append(f"run {label} train_seconds / wall_seconds are not positive numbers")
        elif run["wall_seconds"] < run["train_seconds"] * (1 - 1e-6) - 1e-3:
            problems.append(f"run {label} wall_seconds {run['wall_seconds']} < train_seconds {run['train_seconds']}")
        if "flops_utilisation" in run:
            try:
                expect = run["flops_per_item"] * run["items_per_second"] / run["peak_flops_per_second"]
            except (KeyError, TypeError, ZeroDivisionError):
                expect = None
            if not _close(run["flops_utilisation"], expect):
                problems.append(f"run {label} flops_utilisation {run['flops_utilisation']} is not "
                                "flops_per_item * items_per_second / peak_flops_per_second")
    targets = doc.get("targets") if isinstance(doc.get("targets"), list) else []
    if not targets:
        problems.append("no targets")
    names = set()
    for i, t in enumerate(targets):
        name = t.get("name", f"#{i}") if isinstance(t, dict) else f"#{i}"
        if not isinstance(t, dict) or any(k not in t for k in ("name", "target", "measured", "met")):
            problems.append(f"target {name} lacks name, target, measured or met")
            continue
        if name in names:
            problems.append(f"target name {name} appears twice")
        names.add(name)
        try:
            expected = met(t["target"], t["measured"])
        except ValueError as err:
            problems.append(f"target {name}: {err}")
            continue
        if t["met"] is not expected:
            problems.append(f"target {name}: met is {t['met']!r} but {t['measured']} {t['target']} is {expected}")
        if "from" in t:
            value, _ = _check_spec(f"target {name} from", t["from"], by_id, problems)
            if not _close(t["measured"], value):
                problems.append(f"target {name}: measured {t['measured']} but its runs give {value}")
        if "numerator" in t or "denominator" in t:
            num, ours = _check_spec(f"target {name} numerator", t.get("numerator"), by_id, problems)
            den, peer = _check_spec(f"target {name} denominator", t.get("denominator"), by_id, problems)
            ratio = num / den if num is not None and den not in (None, 0.0) else None
            if not _close(t["measured"], ratio):
                problems.append(f"target {name}: measured {t['measured']} but numerator / denominator is {ratio}")
            if ours and peer and len(ours) != len(peer):
                problems.append(f"target {name}: {len(ours)} runs of ours against {len(peer)} of the peer")
            if "equal_time" in t:
                check = equal_time_check([*ours, *peer], t["equal_time"].get("tolerance", EQUAL_TIME_TOLERANCE))
                if t["equal_time"].get("tolerance", EQUAL_TIME_TOLERANCE) > EQUAL_TIME_TOLERANCE:
                    problems.append(f"target {name}: equal-time tolerance above {EQUAL_TIME_TOLERANCE:.0%}")
                if not check["within"]:
                    problems.append(f"target {name}: training seconds {check['train_seconds']} are not within "
                                    f"{check['tolerance']:.0%} of each other")
                elif not _close(t["equal_time"].get("spread"), check["spread"]):
                    problems.append(f"target {name}: equal_time spread {t['equal_time'].get('spread')} but the "
                                    f"runs give {check['spread']}")
    return problems


def load_results(folder: Path = RESULTS) -> dict[Path, dict]:
    """Every ``*.json`` under ``folder`` (sorted by name) -> its parsed document."""
    return {p: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
