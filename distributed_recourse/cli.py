"""The `recourse` command: parses arguments and calls the modules; no logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.data.schema import SchemaError


def cmd_prepare(args: argparse.Namespace) -> None:
    from distributed_recourse.population import prepare

    config = RunConfig.from_yaml(args.config)
    prepared = prepare(config)
    prepared.save(args.output)
    print(json.dumps({k: v for k, v in prepared.summary.items() if k != "model"}, indent=2))
    print(f"accuracy {prepared.summary['model']['accuracy']:.4f}; "
          f"written {Path(args.output) / 'population.json'}")


def cmd_train(args: argparse.Namespace) -> None:
    from distributed_recourse.report import summary_table
    from distributed_recourse.train import train

    config = RunConfig.from_yaml(args.config)
    summary = train(config, args.output, address=args.address, resume=args.resume)
    print(summary_table(summary))
    print(f"written {Path(args.output) / 'summary.json'}, archive.csv and {report(args.output)}")


def cmd_tune(args: argparse.Namespace) -> None:
    from distributed_recourse.sweep import SweepSpec, sweep

    trials = sweep(SweepSpec.from_yaml(args.config), args.output, address=args.address,
                   resume=args.resume)
    print(trials.head(10).to_string(index=False))
    print(f"written {Path(args.output) / 'trials.csv'}, pareto.csv, best.yaml and "
          f"{report(args.output)}")


def report(folder: str) -> Path:
    """Every run command ends with the report a person reads (report.md, report.html)."""
    from distributed_recourse.report import write_report

    return write_report(folder)


def cmd_report(args: argparse.Namespace) -> None:
    path = report(args.folder)
    print(f"written {path}, {path.with_suffix('.html')} and {path.parent / 'plots'}")


def cmd_reproduce(args: argparse.Namespace) -> None:
    from distributed_recourse.reproduce import reproduce

    table = reproduce(args.dataset, args.output, budget_s=args.budget, env_steps=args.steps,
                      data_path=args.data, address=args.address, resume=args.resume)
    print(table.to_string(index=False))
    print(f"written {Path(args.output) / 'RESULTS.md'}, results.csv and {report(args.output)}")


def cmd_explain(args: argparse.Namespace) -> None:
    from distributed_recourse.batch import explain_batch

    manifest = explain_batch(args.run_dir, args.input, args.output, address=args.address,
                             alternatives=args.alternatives, block_rows=args.block_rows,
                             worker_resources=args.worker_resources)
    print(json.dumps(manifest, indent=2))
    print(f"written {Path(args.output) / 'data'}, rejected/ and manifest.json")


def cmd_serve(args: argparse.Namespace) -> None:
    from distributed_recourse.serve import serve_until_stopped

    serve_until_stopped(args.run_dir, address=args.address, host=args.host, port=args.port,
                        replicas=args.replicas, token_file=args.token_file, max_rows=args.max_rows)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="recourse", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    prep = commands.add_parser("prepare", help="model, affected population and clusters")
    prep.add_argument("--config", required=True)
    prep.add_argument("--output", required=True)
    prep.set_defaults(run=cmd_prepare)

    train = commands.add_parser("train", help="learn fair action sets with SAC on Ray")
    train.add_argument("--config", required=True)
    train.add_argument("--output", required=True)
    train.add_argument("--address", default=None,
                       help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in OUTPUT")
    train.set_defaults(run=cmd_train)

    tune = commands.add_parser("tune", help="Ray Tune sweep over reward weights")
    tune.add_argument("--config", required=True, help="a sweep file (tune_configs/*_sweep.yaml)")
    tune.add_argument("--output", required=True)
    tune.add_argument("--address", default=None)
    tune.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    tune.set_defaults(run=cmd_tune)

    reproduce = commands.add_parser("reproduce", help="the paper's experiment grid on a dataset")
    reproduce.add_argument("--dataset", required=True, choices=["adult", "alzheimer", "ssl"])
    reproduce.add_argument("--output", required=True)
    reproduce.add_argument("--data", default=None, help="the data file (needed for ssl)")
    reproduce.add_argument("--budget", type=float, default=120.0,
                           help="training seconds per experiment (its scopes train in turn)")
    reproduce.add_argument("--steps", type=int, default=40_000,
                           help="env steps per scope at most")
    reproduce.add_argument("--address", default=None)
    reproduce.add_argument("--resume", action="store_true")
    reproduce.set_defaults(run=cmd_reproduce)

    report = commands.add_parser("report", help="a run folder as report.md and report.html")
    report.add_argument("--run", dest="folder", required=True,
                        help="the output folder of a train, tune or reproduce run")
    report.set_defaults(run=cmd_report)

    explain = commands.add_parser("explain", help="recourse for every row of a table, on Ray Data")
    explain.add_argument("--run", dest="run_dir", required=True,
                         help="a trained run folder, or an explainer saved by FairRecourse.save")
    explain.add_argument("--input", required=True, help="a CSV or Parquet file, or a folder of them")
    explain.add_argument("--output", required=True,
                         help="folder for data/, rejected/ and manifest.json; rerun to finish")
    explain.add_argument("--address", default=None,
                         help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    explain.add_argument("--alternatives", type=int, default=2,
                         help="next-best flipping actions to report per person")
    explain.add_argument("--block-rows", type=int, default=20_000,
                         help="rows per block read (memory per worker against overhead)")
    explain.add_argument("--worker-resources", type=json.loads, default=None,
                         help='custom Ray resources per explaining worker, e.g. \'{"explain_slot": 1}\'')
    explain.set_defaults(run=cmd_explain)

    serving = commands.add_parser("serve", help="real-time recourse over HTTP, on Ray Serve")
    serving.add_argument("--run", dest="run_dir", required=True,
                         help="a trained run folder, or an explainer saved by FairRecourse.save")
    serving.add_argument("--address", default=None,
                         help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
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
    serving.set_defaults(run=cmd_serve)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ConfigError, SchemaError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
