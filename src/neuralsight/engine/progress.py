"""Progress reports for long steps: a live display on a terminal, plain lines on a pipe, nothing when off.

Everything the library says while it works goes through this module (a task never prints), so one switch
governs all of it:

- :func:`status` wraps a silent step: ``label ...`` then ``label: done in 3.2 s`` (a spinner on a terminal);
- :func:`track` wraps a loop: a bar on a terminal; on a pipe at most one line every ``PLAIN_INTERVAL``
  seconds, plus the last;
- :class:`Training` is the reporter :func:`neuralsight.engine.trainer.fit` drives: a live bar on a terminal,
  one line per evaluation on a pipe (``step 400/1000  epoch 2  loss 0.3412  val_acc 0.9012 (best) ...``).

The mode is ``auto`` unless :func:`set_mode` forces ``rich``, ``plain`` or ``off`` (the CLI's flags, tests).
``auto`` is ``rich`` when the stream is a terminal and ``plain`` otherwise (a pipe, ``tee``, nohup, CI, a batch
scheduler's log file), and ``off`` on every DDP rank but 0, so only one process speaks.

The stream is **stderr**, and ``auto`` looks at stderr. Standard output carries what commands return (tables,
``--json``, generated text, the run directory), which users redirect into files and other programs; progress
is diagnostics, kept apart as git, curl and tqdm keep it. Looking at the stream that is written to is the one
test that tells whether a live display can redraw there. To keep progress in a log file, redirect both
(``neuralsight train ... 2>&1 | tee train.log``, or ``|&``); the lines come out plain because stderr is then a
pipe.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping

MODES = ("auto", "rich", "plain", "off")
PLAIN_INTERVAL = 10.0  # seconds between two plain lines of track()

_mode = "auto"
_stream = None          # None: sys.stderr as it is when a report is written (pytest's capture swaps it)
_live = None            # the rich Console of the live display now drawing; rich allows one at a time
_now = time.perf_counter


def set_mode(mode: str = "auto", stream=None) -> None:
    """Force how progress is shown: ``auto``, ``rich``, ``plain`` or ``off``; ``stream`` replaces stderr."""
    global _mode, _stream
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r} is not one of {', '.join(MODES)}")
    _mode, _stream = mode, stream


def mode() -> str:
    """The mode in effect now: ``rich``, ``plain`` or ``off`` (``auto`` resolved)."""
    if os.environ.get("RANK", "0") != "0":
        return "off"  # torchrun: rank 0 reports for everyone
    if _mode != "auto":
        return _mode
    stream = _out()
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        terminal = False
    return "rich" if terminal and os.environ.get("TERM") != "dumb" else "plain"


def _out():
    return _stream if _stream is not None else sys.stderr


def _console():
    from rich.console import Console

    return Console(file=_out(), force_terminal=True if _mode == "rich" else None, highlight=False)


def line(text: str) -> None:
    """Write one whole line (above a live display when one is drawing); nothing when progress is off."""
    current = mode()
    if current == "off":
        return
    if _live is not None:
        from rich.text import Text

        _live.print(Text(text))
    elif current == "rich":
        from rich.text import Text

        _console().print(Text(text))
    else:
        out = _out()
        out.write(text + "\n")
        out.flush()


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def rate(count: float, elapsed: float, unit: str) -> str:
    """``3,950 images/s``: a throughput with its unit."""
    per_second = count / elapsed if elapsed > 0 else 0.0
    return f"{per_second:,.0f} {unit}/s" if per_second >= 100 else f"{per_second:,.3g} {unit}/s"


def number(value: float) -> str:
    """A metric value: four decimals where that reads well, thousands separators or exponents elsewhere."""
    if value != value or value in (float("inf"), float("-inf")):  # NaN, inf
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.1f}"
    if magnitude and magnitude < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4f}"


@contextlib.contextmanager
def status(label: str) -> Iterator[None]:
    """Report a long silent step: ``label ...`` then ``label: done in 3.2 s`` (``failed after`` on an error)."""
    global _live
    current = mode()
    if current == "off":
        yield
        return
    start = _now()
    spinner = None
    if current == "rich" and _live is None:
        console = _console()
        spinner = console.status(label)
        spinner.__enter__()
        _live = console
    else:
        line(f"{label} ...")
    ok = False
    try:
        yield
        ok = True
    finally:
        if spinner is not None:
            spinner.__exit__(None, None, None)
            _live = None
        line(f"{label}: {'done in' if ok else 'failed after'} {seconds(_now() - start)}")


def track(iterable: Iterable, label: str, total: int | None = None, unit: str = "items") -> Iterator:
    """Yield from ``iterable`` while reporting how far it got (``total`` defaults to ``len(iterable)``)."""
    global _live
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    current = mode()
    if current == "off":
        yield from iterable
        return
    start = last_line = _now()
    done = 0
    bar = None
    if current == "rich" and _live is None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn(f"[bold]{_escape(label)}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                       TimeElapsedColumn(), console=_console(), transient=False)
        bar.__enter__()
        _live = bar.console
        task = bar.add_task(label, total=total)

    def counted() -> str:
        return f"{done:,}/{total:,} {unit}" if total is not None else f"{done:,} {unit}"

    finished = False
    try:
        for item in iterable:
            yield item
            done += 1
            if bar is not None:
                bar.update(task, completed=done)
            elif _now() - last_line >= PLAIN_INTERVAL and (total is None or done < total):
                last_line = _now()
                share = f"  {100 * done / total:.0f}%" if total else ""
                line(f"{label}: {counted()}{share}  {seconds(last_line - start)}  {rate(done, last_line - start, unit)}")
        finished = True
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
            _live = None
        elapsed = _now() - start
        verb = "done in" if finished else "stopped after"
        line(f"{label}: {counted()}  {verb} {seconds(elapsed)}  {rate(done, elapsed, unit)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class Training:
    """What :func:`~neuralsight.engine.trainer.fit` shows: a live bar (rich) or a line per evaluation (plain).

    Args:
        enabled: False makes it silent whatever the mode (``train.progress = false``, DDP ranks > 0).
        total: the step horizon, None when only a time budget bounds the run.
        max_time: the wall-clock budget in seconds (0: none).
        monitor: the metric that decides "best"; it comes first in each line.
        item_unit: what the task's training items are ("images", "windows", ...), for the throughput.
        metric_units: units shown after metric values, e.g. ``{"val_loss": "nats/char"}``.
    """

    def __init__(self, enabled: bool, total: int | None, max_time: float, monitor: str,
                 item_unit: str = "items", metric_units: Mapping[str, str] | None = None):
        self.mode = mode() if enabled else "off"
        self.total, self.max_time, self.monitor = total, max_time, monitor
        self.item_unit, self.metric_units = item_unit, dict(metric_units or {})
        self._bar = None
        self._task = None
        self._loss: float | None = None
        self._metric: float | None = None
        self._rate = ""
        self._last_draw = 0.0

    def __enter__(self):
        global _live
        if self.mode == "rich" and _live is not None:
            self.mode = "plain"  # another live display is drawing: print lines above it instead
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.table import Column

            # The numbers keep their width; on a narrow terminal the metrics fold onto a second line.
            self._bar = Progress(TextColumn("[bold]train"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[info]}",
                                                                 table_column=Column(ratio=1, overflow="fold")),
                                 console=_console(), transient=False)
            self._bar.__enter__()
            _live = self._bar.console
            self._task = self._bar.add_task("train", total=self.total, info="")
        return self

    def __exit__(self, *exc):
        global _live
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None
            _live = None
        return False

    def _with_unit(self, name: str, value: float) -> str:
        unit = self.metric_units.get(name)
        return f"{name} {number(value)}" + (f" {unit}" if unit else "")

    def _clock(self, elapsed: float) -> str:
        if self.max_time:
            return f"{elapsed:.1f}/{self.max_time:g} s"
        return seconds(elapsed)

    def step(self, step: int, elapsed: float, loss: float | None = None, items: float = 0,
             items_seconds: float = 0.0) -> None:
        """After a training step; ``loss`` and the throughput window come with each train record."""
        if loss is not None:
            self._loss = loss
        if items_seconds > 0:
            self._rate = rate(items, items_seconds, self.item_unit)
        if self._bar is None:
            return
        now = _now()
        if loss is None and now - self._last_draw < 0.1:
            return  # redraw at most ten times a second between records
        self._draw(step, elapsed, now)

    def evaluated(self, step: int, epoch: int, metrics: Mapping[str, float], best: bool, elapsed: float,
                  items: float = 0, items_seconds: float = 0.0) -> None:
        """After an evaluation: the bar shows the monitored metric; a plain stream gets one line."""
        self._metric = metrics.get(self.monitor, self._metric)
        if self._bar is not None:
            self._draw(step, elapsed, _now())
            return
        if self.mode != "plain":
            return
        parts = [f"step {step:,}/{self.total:,}" if self.total else f"step {step:,}", f"epoch {epoch}"]
        if self._loss is not None and step > 0:
            parts.append(f"loss {number(self._loss)}")
        names = [self.monitor] if self.monitor in metrics else []
        names += [k for k in metrics if k != self.monitor]
        for name in names:
            text = self._with_unit(name, metrics[name])
            parts.append(text + " (best)" if best and name == self.monitor else text)
        parts.append(self._clock(elapsed))
        if items_seconds > 0:
            parts.append(rate(items, items_seconds, self.item_unit))
        line("  ".join(parts))

    def _draw(self, step: int, elapsed: float, now: float) -> None:
        self._last_draw = now
        parts = []
        if self._loss is not None:
            parts.append(f"loss {number(self._loss)}")
        if self._metric is not None:
            parts.append(self._with_unit(self.monitor, self._metric))
        if self._rate:
            parts.append(self._rate)
        if self.max_time:
            parts.append(f"budget {elapsed:.0f}/{self.max_time:.0f} s")
        self._bar.update(self._task, completed=step, info=_escape("  ".join(parts)))
