"""The `recourse` command: parses arguments and calls the modules; no logic of its own.

Exit codes: 0 the command completed; 1 a trial, trainer or job failed (its files hold what
finished, and the message names the scope and the error); 2 a bad config, option or data file
(one line naming it). Tracebacks go to the run's log, not the terminal, unless `--verbose`.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from distributed_recourse.config import ConfigError, RunConfig, shipped_configs
from distributed_recourse.data.schema import SchemaError

OK, FAILED, BAD_INPUT = 0, 1, 2


class RunFailed(Exception):
    """The command ran but part of it failed; the files it wrote hold what finished."""


def written(console, *paths: Path) -> None:
    console.note("written: " + ", ".join(str(p) for p in paths))


def report(folder: str | Path) -> Path:
    """Every run command ends with the report a person reads (report.md, report.html)."""
    from distributed_recourse.report import write_report

    return write_report(folder)


# --------------------------------------------------------------------- commands
def cmd_configs(args: argparse.Namespace) -> None:
    shipped = shipped_configs()
    if args.action == "show":
        if args.name not in shipped:
            raise ConfigError(f"no shipped config {args.name!r}; shipped: {', '.join(sorted(shipped))}")
        print(shipped[args.name].read_text(), end="")
        return
    for name, path in sorted(shipped.items()):
        first = path.read_text().splitlines()[0].lstrip("# ")
        print(f"{name:14s} {first}")
    print("\nrecourse configs show NAME prints one; copy it, edit it, pass it as --config FILE.")


def cmd_prepare(args: argparse.Namespace) -> None:
    from distributed_recourse.console import RunConsole
    from distributed_recourse.population import prepare
    from distributed_recourse.report import prepare_table

    config = RunConfig.from_yaml(args.config)
    with RunConsole(args.output, "prepare", args.verbose) as console:
        prepared = prepare(config, stage=console.stage)
        prepared.save(args.output)
        console.stage("done")
    print(prepare_table(prepared.summary))
    print(f"written: {Path(args.output) / 'population.json'}, {Path(args.output) / 'prepared'}")


def cmd_train(args: argparse.Namespace) -> None:
    from distributed_recourse.console import RunConsole
    from distributed_recourse.report import summary_table
    from distributed_recourse.train import train

    config = RunConfig.from_yaml(args.config)
    with RunConsole(args.output, "train", args.verbose) as console:
        result = train(config, args.output, address=args.address, resume=args.resume,
                       stage=console.stage, starting=console.starting,
                       callbacks=[console.train_callback()])
        console.stage("writing the report")
        path = report(args.output)
        console.stage("done")
    print(summary_table(result))
    out = Path(args.output)
    print(f"written: {out / 'summary.json'}, {out / 'archive.csv'}, {path}, "
          f"{path.with_suffix('.html')}, logs in {out / 'logs'}")
    if result.errors:
        raise RunFailed("; ".join(result.errors))


def cmd_tune(args: argparse.Namespace) -> None:
    from distributed_recourse.console import RunConsole
    from distributed_recourse.sweep import SweepSpec, sweep

    spec = SweepSpec.from_yaml(args.config)
    with RunConsole(args.output, "tune", args.verbose,
                    ("steps", "objective", "SR", "PD", "ECR gap", "elapsed", "state")) as console:
        trials, outcomes = sweep(spec, args.output, address=args.address, resume=args.resume,
                                 callbacks=[console.sweep_callback(spec.n_trials)])
        console.stage("writing the report")
        path = report(args.output)
        console.stage("done")
    print(trials.drop(columns=["error"]).head(10).to_string(index=False))
    out = Path(args.output)
    print(f"written: {out / 'trials.csv'}, {out / 'pareto.csv'}, {out / 'best.yaml'}, "
          f"{out / 'trials'}/, {path}, logs in {out / 'logs'}")
    failed = [error for o in outcomes.values() for error in o.errors]
    if failed:
        raise RunFailed(f"{len(failed)} trial(s) failed: " + "; ".join(failed))


def cmd_reproduce(args: argparse.Namespace) -> None:
    from distributed_recourse.console import RunConsole
    from distributed_recourse.reproduce import reproduce

    with RunConsole(args.output, f"reproduce {args.dataset}", args.verbose,
                    ("steps", "objective", "SR", "PD", "ECR gap", "elapsed", "state")) as console:
        table, searches = reproduce(args.dataset, args.output, budget_s=args.budget,
                                    env_steps=args.steps, data_path=args.data,
                                    address=args.address,
                                    resume=args.resume, mdp=args.mdp,
                                    callbacks=[console.sweep_callback()])
        console.stage("writing the report")
        path = report(args.output)
        console.stage("done")
    print(searches.to_string(index=False))
    out = Path(args.output)
    print(f"written: {out / 'RESULTS.md'}, {out / 'results.csv'}, {out / 'searches.csv'}, {path}")


def cmd_report(args: argparse.Namespace) -> None:
    path = report(args.folder)
    print(f"written: {path}, {path.with_suffix('.html')}, {path.parent / 'plots'}")


def cmd_audit(args: argparse.Namespace) -> None:
    from distributed_recourse.audit import audit_run, write_audit

    audit = audit_run(args.run_dir, budget=args.budget, phi=args.phi)
    print(json.dumps(audit["population"], indent=2))
    written_audit = write_audit(args.run_dir, audit)
    path = report(args.run_dir)  # the report gains the audit's section
    print(f"written: {written_audit}, {path}")


def cmd_explain(args: argparse.Namespace) -> None:
    from distributed_recourse.batch import explain_batch
    from distributed_recourse.console import RunConsole

    with RunConsole(args.output, "explain", args.verbose):
        manifest = explain_batch(args.run_dir, args.input, args.output, address=args.address,
                                 alternatives=args.alternatives, block_rows=args.block_rows,
                                 worker_resources=args.worker_resources)
    print(json.dumps({k: manifest[k] for k in ("rows_read", "rows_written", "rows_rejected",
                                               "status", "rows_per_s")}, indent=2))
    out = Path(args.output)
    print(f"written: {out / 'data'}/, {out / 'rejected'}/, {out / 'manifest.json'}")


def cmd_serve(args: argparse.Namespace) -> None:
    from distributed_recourse.serve import serve_until_stopped

    serve_until_stopped(args.run_dir, address=args.address, host=args.host, port=args.port,
                        replicas=args.replicas, token_file=args.token_file, max_rows=args.max_rows)


# --------------------------------------------------------------------- arguments
def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="recourse", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, run, output: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument("--verbose", action="store_true",
                         help="show Ray's, Tune's and RLlib's own output and full tracebacks")
        if output:
            sub.add_argument("--address", default=None,
                             help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
        sub.set_defaults(run=run)
        return sub

    configs = command("configs", "the shipped configs: list them, or show one", cmd_configs,
                      output=False)
    configs.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    configs.add_argument("name", nargs="?", help="with `show`: the config to print")

    prep = command("prepare", "model, affected population, clusters and the ceiling",
                   cmd_prepare, output=False)
    prep.add_argument("--config", required=True, help="a config file, or a shipped config's name")
    prep.add_argument("--output", required=True)

    train = command("train", "learn fair action sets (one SAC trainer per scope) on Ray", cmd_train)
    train.add_argument("--config", required=True, help="a config file, or a shipped config's name")
    train.add_argument("--output", required=True)
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in OUTPUT")

    tune = command("tune", "Ray Tune sweep over reward weights", cmd_tune)
    tune.add_argument("--config", required=True, help="a sweep file (e.g. quick_sweep)")
    tune.add_argument("--output", required=True)
    tune.add_argument("--resume", action="store_true", help="continue an interrupted sweep")

    reproduce = command("reproduce", "the paper's grid, with the ceiling and the baselines",
                        cmd_reproduce)
    reproduce.add_argument("--dataset", required=True, choices=["adult", "alzheimer", "ssl"])
    reproduce.add_argument("--output", required=True)
    reproduce.add_argument("--data", default=None, help="the data file (needed for ssl)")
    reproduce.add_argument("--budget", type=float, default=None,
                           help="at most this many training seconds per scope")
    reproduce.add_argument("--steps", type=int, default=None, help="at most this many steps per scope")
    reproduce.add_argument("--mdp", choices=["proposal", "reference"], default="proposal",
                           help="SAC's formulation (reference: the paper's)")
    reproduce.add_argument("--resume", action="store_true")

    rep = command("report", "a run folder as report.md and report.html", cmd_report, output=False)
    rep.add_argument("--run", dest="folder", required=True,
                     help="the output folder of a train, tune or reproduce run")

    audit = command("audit", "FACTS' fairness-of-recourse measures of a run's sets", cmd_audit,
                    output=False)
    audit.add_argument("--run", dest="run_dir", required=True, help="a trained run folder")
    audit.add_argument("--budget", type=float, default=0.1,
                       help="the cost budget of equal effectiveness within budget")
    audit.add_argument("--phi", type=float, default=None,
                       help="effectiveness threshold of equal choice (default: the run's phi)")

    explain = command("explain", "recourse for every row of a table, on Ray Data", cmd_explain)
    explain.add_argument("--run", dest="run_dir", required=True,
                         help="a trained run folder, or an explainer saved by FairRecourse.save")
    explain.add_argument("--input", required=True, help="a CSV or Parquet file, or a folder of them")
    explain.add_argument("--output", required=True,
                         help="folder for data/, rejected/ and manifest.json; rerun to finish")
    explain.add_argument("--alternatives", type=int, default=2,
                         help="next-best flipping actions to report per person")
    explain.add_argument("--block-rows", type=int, default=20_000,
                         help="rows per block read (memory per worker against overhead)")
    explain.add_argument("--worker-resources", type=json.loads, default=None,
                         help='custom Ray resources per explaining worker, e.g. \'{"explain_slot": 1}\'')

    serving = command("serve", "real-time recourse over HTTP, on Ray Serve", cmd_serve)
    serving.add_argument("--run", dest="run_dir", required=True,
                         help="a trained run folder, or an explainer saved by FairRecourse.save")
    serving.add_argument("--host", default="127.0.0.1",
                         help="address the HTTP proxy binds (default: this machine only)")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument("--replicas", type=int, default=None,
                         help="a fixed number of replicas (default: autoscale within the config's "
                              "serve.min_replicas..max_replicas)")
    serving.add_argument("--token-file", default=None,
                         help="file holding the bearer token every request must carry")
    serving.add_argument("--max-rows", type=int, default=None,
                         help="rows one request may carry (default: the config's serve.max_rows)")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ConfigError, SchemaError) as error:
        print(f"error: {error}", file=sys.__stderr__)
        return BAD_INPUT
    except RunFailed as error:
        print(f"failed: {error}", file=sys.__stderr__)
        return FAILED
    except Exception as error:  # noqa: BLE001 - a person gets one line and the log's path
        if args.verbose:
            raise
        log = failure_log(args, error)
        print(f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
              f"\nthe full traceback is in {log} (or rerun with --verbose)", file=sys.__stderr__)
        return FAILED
    return OK


def failure_log(args: argparse.Namespace, error: BaseException) -> Path:
    """Write the traceback where the run's logs are (or a temporary file)."""
    import tempfile

    output = getattr(args, "output", None)
    folder = Path(output) / "logs" if output else Path(tempfile.mkdtemp(prefix="recourse-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "error.log"
    path.write_text("".join(traceback.format_exception(error)))
    return path


if __name__ == "__main__":
    sys.exit(main())
