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
    print(f"written {Path(args.output) / 'summary.json'} and archive.csv")


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
