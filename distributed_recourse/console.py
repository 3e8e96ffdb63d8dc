"""What a person at the terminal sees while a long command runs: one live display (rich) of the
run's progress, and nothing of Ray's, Tune's or RLlib's own output, which goes to
OUTPUT/logs/ instead (`--verbose` shows it). Where the display cannot render (not a terminal,
or CI), plain progress lines are printed instead, at most one every few seconds per row.

`RunConsole` is a context manager around a command; the modules below it know nothing of it but
a `stage(text)` callable and the Tune callback it hands out.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

ACTIVE: list[RunConsole] = []
"""The console of the command running in this process: Tune pickles its callbacks, so they
find the console here rather than hold it."""
PLAIN_EVERY_S = 5.0
"""Plain output: a row's line is printed again at most this often (and when it finishes)."""
QUIET_LOGGERS = ("ray", "ray.tune", "ray.rllib", "ray.data", "ray.serve", "ray.train",
                 "ray.air", "py.warnings")


def active() -> RunConsole | None:
    """The running command's console (what Tune's unpickled callbacks report to)."""
    return ACTIVE[-1] if ACTIVE else None


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class RunConsole:
    """The display of one command writing into `output`; `verbose` leaves Ray's output on the
    terminal. Rows are keyed (a scope, or a trial) and hold the latest figures."""

    def __init__(self, output: str | Path | None, title: str, verbose: bool = False,
                 columns: tuple[str, ...] = ("steps", "steps/s", "SR of reachable", "PD",
                                             "ECR gap", "archived", "elapsed", "state")) -> None:
        self.logs = Path(output) / "logs" if output is not None else None
        self.title = title
        self.verbose = verbose
        self.columns = columns
        self.rows: dict[str, dict[str, str]] = {}
        self.stage_text = "starting"
        self.started = time.time()
        self.terminal = Console(file=sys.__stdout__, highlight=False)
        self.live_ok = self.terminal.is_terminal and not os.environ.get("CI")
        if not self.live_ok:  # a log file or a pipe: one line per update, never wrapped
            self.terminal = Console(file=sys.__stdout__, highlight=False, width=1000)
        self._printed: dict[str, float] = {}
        self._live: Live | None = None
        self._saved: tuple | None = None

    # ----------------------------------------------------------------- lifetime
    def __enter__(self) -> RunConsole:
        from distributed_recourse import runtime

        if not self.verbose and self.logs is not None:
            self.logs.mkdir(parents=True, exist_ok=True)
            self._quiet(self.logs / "recourse.log")
            runtime.WORKER_OUTPUT["log_to_driver"] = False
        ACTIVE.append(self)
        if self.live_ok:
            self._live = Live(self._table(), console=self.terminal, refresh_per_second=4,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        ACTIVE.remove(self)
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)
        self._copy_worker_logs()
        if self._saved is not None:
            sys.stdout, sys.stderr, handlers = self._saved
            root = logging.getLogger()
            root.handlers = handlers
            self._log_file.close()

    def _quiet(self, path: Path) -> None:
        """Python's output, warnings and Ray's loggers to the log file; the display keeps the
        real terminal."""
        self._log_file = open(path, "a", buffering=1)  # noqa: SIM115 - closed in __exit__
        handler = logging.StreamHandler(self._log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        self._saved = (sys.stdout, sys.stderr, list(root.handlers))
        root.handlers = [handler]
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers = [handler]
            logger.propagate = False
        logging.captureWarnings(True)
        warnings.simplefilter("default")
        sys.stdout = sys.stderr = self._log_file

    def _copy_worker_logs(self) -> None:
        """Keep the Ray workers' own output (RLlib's warnings, tracebacks) beside the run."""
        if self.verbose or self.logs is None:
            return
        try:
            import ray

            if not ray.is_initialized():
                return
            session = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
        except Exception:  # Ray never started, or its session is gone
            return
        target = self.logs / "ray"
        target.mkdir(exist_ok=True)
        for path in session.glob("worker-*"):
            if path.suffix in (".out", ".err") and path.stat().st_size:
                shutil.copy2(path, target / path.name)

    # ----------------------------------------------------------------- what the run reports
    def stage(self, text: str) -> None:
        """What the command is doing before the rows exist (loading, training the model...)."""
        self.stage_text = text
        self._show(None)

    def row(self, key: str, finished: bool = False, **values: Any) -> None:
        self.rows[key] = {name: fmt(values.get(name.replace(" ", "_").replace("/", "_per_")))
                          for name in self.columns}
        self._show(key, finished)

    def starting(self, scopes: list[str]) -> None:
        """The scopes about to train, shown before their trainers report."""
        for scope in scopes:
            self.row(scope, state="starting")

    def note(self, text: str) -> None:
        """A line that stays above the display (a finished stage, the files written)."""
        self.terminal.print(text)

    def _show(self, key: str | None, finished: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._table())
            return
        now = time.time()
        if key is None:  # a new stage is news: always printed, once
            if self._printed.get(self.stage_text) is None:
                self._printed[self.stage_text] = now
                self.terminal.print(f"[{duration(now - self.started)}] {self.stage_text}")
            return
        if finished or now - self._printed.get(key, 0.0) >= PLAIN_EVERY_S:
            self._printed[key] = now
            cells = "  ".join(f"{c} {v}" for c, v in self.rows[key].items())
            self.terminal.print(f"[{duration(now - self.started)}] {key}: {cells}")

    def _table(self) -> Table:
        table = Table(title=f"{self.title}: {self.stage_text} "
                            f"({duration(time.time() - self.started)})", title_justify="left")
        table.add_column("")
        for column in self.columns:
            table.add_column(column, justify="right")
        for key, values in self.rows.items():
            table.add_row(key, *values.values())
        return table

    # ----------------------------------------------------------------- Tune
    def train_callback(self):
        """A Tune callback showing a training trial's scopes, one row each."""
        from ray.tune import Callback

        class ScopeRows(Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                console = active()
                if console is None:
                    return
                console.stage("training")
                for scope, s in result.get("scopes", {}).items():
                    steps, seconds = s.get("steps", 0), s.get("train_s") or 0.0
                    console.row(scope, finished=s.get("stopped") is not None,
                                steps=f"{steps:,}",
                                steps_per_s=f"{steps / seconds:.0f}" if seconds else "-",
                                SR_of_reachable=f"{fmt(s.get('SR'))} of {fmt(s.get('reachable'))}",
                                PD=s.get("PD"), ECR_gap=s.get("ECR_gap"),
                                archived=s.get("archived"), elapsed=duration(seconds),
                                state=s.get("stopped") or "training")

        return ScopeRows()

    def sweep_callback(self, n_trials: int | None = None):
        """A Tune callback showing a sweep's trials, one row each (of `n_trials` in all)."""
        from ray.tune import Callback

        class TrialRows(Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                console = active()
                if console is None:
                    return
                console.stage(f"{sum(t.status == 'TERMINATED' for t in trials)} of "
                              f"{n_trials or len(trials)} trials finished")
                params = ", ".join(f"{k}={v}" for k, v in trial.config.items())
                console.row(f"{trial.trial_id} {params}"[:60], finished=result.get("finished"),
                            steps=f"{result.get('steps', 0):,}", objective=result.get("objective"),
                            SR=result.get("SR"), PD=result.get("PD"),
                            ECR_gap=result.get("ECR_gap"),
                            elapsed=duration(result.get("time_total_s", 0.0)),
                            state="finished" if result.get("finished") else "training")

            def on_trial_error(self, iteration, trials, trial, **info):
                console = active()
                if console is not None:
                    console.row(trial.trial_id, finished=True, state="failed")

        return TrialRows()
