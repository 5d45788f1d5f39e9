"""Command line: `gridledger run | report | compare | node | batch | viz`.

Each sub-command is added by a small `add_*_parser(subparsers)` function that sets
`func=<callable(args) -> int>`; `compare`, `batch` and `viz` live in their own modules
(gridledger.compare, gridledger.batch, gridledger.viz_server), whose heavy imports happen only
when they run. Every error is one line on stderr; exit codes: EXIT_CODES (README "Command line").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_OUT = Path("results/default")
EXIT_BAD_INPUT = 2
EXIT_NODE_DOWN = 3
EXIT_RESUME_CONFLICT = 4
EXIT_NODE_REFUSED = 5
EXIT_CHAIN_FAILED = 6
EXIT_CODES = {
    0: "success",
    EXIT_BAD_INPUT: "bad input (arguments, scenario, feeder, output folder); nothing was run",
    EXIT_NODE_DOWN: "a chain node cannot be reached or went down during the run",
    EXIT_RESUME_CONFLICT: "--resume: the chains contradict the checkpoint",
    EXIT_NODE_REFUSED: "a node cannot run the day (chain id, fork, faucet, gas limits); "
    "nothing was sent or written",
    EXIT_CHAIN_FAILED: "a transaction or RPC call failed on a chain during the run",
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (`gridledger run: error: ...`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def chain_spec(value: str) -> str:
    """argparse type of `--chain`: a value `parse_chain_spec` accepts, and for node URLs a valid
    GRIDLEDGER_RPC_TIMEOUT_S (checked before any work)."""
    from gridledger.chain import IN_PROCESS_SPECS, parse_chain_spec
    from gridledger.chain.jsonrpc import rpc_timeout_s

    try:
        parse_chain_spec(value)
        if value.strip() not in IN_PROCESS_SPECS:
            rpc_timeout_s()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--chain").lstrip(": ")) from None
    return value


def figure_formats(value: str) -> tuple[str, ...]:
    """argparse type of `--figure-format`: comma-separated formats of FIGURE_FORMATS."""
    from gridledger.report import FIGURE_FORMATS

    formats = tuple(dict.fromkeys(f.strip().lower() for f in value.split(",") if f.strip()))
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(
            f"{value!r}: use one or more of {', '.join(FIGURE_FORMATS)}, comma-separated"
        )
    return formats


def add_figure_format_argument(p: argparse.ArgumentParser) -> None:
    """`--figure-format png,pdf,svg` (sets args.figure_format, a tuple)."""
    p.add_argument(
        "--figure-format",
        type=figure_formats,
        default=("png",),
        metavar="png,pdf,svg",
        help="figure file format(s), comma-separated (default png)",
    )


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """`--format`, `--figure-format` and `--day`: what is written beside the Parquet files."""
    p.add_argument(
        "--format",
        choices=("parquet", "csv"),
        default="parquet",
        help="'csv': also write each frame and the daily table as <name>.csv beside its "
        "Parquet file",
    )
    add_figure_format_argument(p)
    p.add_argument(
        "--day",
        metavar="N|YYYY-MM-DD",
        help="the day Fig. 4-7 draw: a day number (1 = the first day) or, for a run with a start "
        "date, the date (default: day 1 of a run longer than a day; all hours of a shorter run)",
    )


def write_outputs(
    results: Any, out: Path, args: argparse.Namespace, *, new_run: bool = False
) -> list[Path]:
    """Figures (and CSV files with `--format csv`) of `results` into `out`; the paths.

    `new_run`: `out` was just saved by a new run, so CSV and figure files not written now
    belong to an older run and are removed (an overwritten folder never mixes two runs)."""
    from gridledger.report import FIGURE_FORMATS, FIGURES, write_figures
    from gridledger.report_periods import PERIOD_FIGURE_NAMES
    from gridledger.results import FRAMES, export_csv

    paths = write_figures(results, out / "figures", formats=args.figure_format, day=args.day)
    if args.format == "csv":
        paths += export_csv(results, out)
    if new_run:
        stale = [out / f"{name}.csv" for name in (*FRAMES, "daily")]
        names = (*FIGURES, *PERIOD_FIGURE_NAMES)
        stale += [out / "figures" / f"{n}.{f}" for n in names for f in FIGURE_FORMATS]
        for path in set(stale) - set(paths):
            path.unlink(missing_ok=True)
    return paths


def add_run_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run a market day, write results and figures")
    p.add_argument("--scenario", type=Path, help="scenario TOML file (default: the paper's day)")
    p.add_argument("--hours", type=int, help="override the number of market hours")
    p.add_argument("--seed", type=int, help="override the scenario seed")
    p.add_argument(
        "--households-per-bus",
        type=int,
        metavar="N",
        help="override the scenario's households_per_bus: N household agents per load bus, each "
        "signing its own transactions (1..1000; scale: README 'Scale')",
    )
    p.add_argument(
        "--chain",
        type=chain_spec,
        default=None,
        help="'embedded' (default: in-process revm), 'revm', 'pyevm' (in-process py-evm) or two "
        "JSON-RPC URLs 'URL_LETB,URL_RETB' (gridledger node); with --resume: the nodes' URLs if "
        "they came back elsewhere",
    )
    p.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite an output folder holding another scenario's results (or other files)",
    )
    add_output_arguments(p)
    p.add_argument(
        "--checkpoint",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="save the results and checkpoint.json into the output folder after every hour, so "
        "that a run whose node went down can be resumed (default: on for node chains)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the interrupted run checkpointed in DIR (restart its nodes first); "
        "scenario and output folder come from DIR",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
    return p


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="redraw the figures of a results folder")
    p.add_argument("dir", type=Path, help="folder written by `gridledger run`")
    add_output_arguments(p)
    p.set_defaults(func=cmd_report)
    return p


def add_node_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gridledger.chain.nodes import add_node_arguments, main_node

    p = sub.add_parser("node", help="start local anvil nodes (one per chain) and print URLs")
    add_node_arguments(p)
    p.set_defaults(func=main_node)
    return p


def build_parser() -> argparse.ArgumentParser:
    from gridledger import __version__

    parser = OneLineParser(
        prog="gridledger",
        description="Blockchain P2P electricity trading on a distribution feeder (Mesa model).",
        epilog="exit codes:\n" + "\n".join(f"  {c}  {what}" for c, what in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gridledger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    add_report_parser(sub)
    add_node_parser(sub)
    from gridledger.batch import add_batch_parser
    from gridledger.compare import add_compare_parser
    from gridledger.viz_server import add_viz_parser

    add_compare_parser(sub)
    add_batch_parser(sub)
    add_viz_parser(sub)
    return parser


def _load_scenario(args: argparse.Namespace) -> Any:
    from gridledger.scenario import Scenario

    path = args.scenario
    if path is not None and not path.exists() and path.parent == Path():
        bundled = Path(__file__).parent / "scenarios" / path.name  # e.g. attacks.toml
        path = bundled if bundled.exists() else path
    sc = Scenario.from_toml(path) if path else Scenario()
    changes: dict[str, Any] = {}
    if args.hours is not None:
        changes["hours"] = args.hours
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.households_per_bus is not None:
        changes["households_per_bus"] = args.households_per_bus
    return sc.replace(**changes) if changes else sc


def format_summary(summary: dict[str, Any]) -> str:
    """The short end-of-run summary printed by `gridledger run`."""
    from gridledger.day.attack_table import attacks_frame, format_attack_table

    s = summary
    hours = f"hours {s['hours']}"
    if not s.get("complete", True):
        hours += f" of {s['hours_planned']} planned (partial)"
    lines = [
        f"{hours}, users {s['users']}, producers {s['producers']}, REPs {s['reps']}, "
        f"LETB areas {s['letb_areas']}, chain {s['chain']}",
        f"cost saving        {s['cost_saving_pct']:6.1f} %  "
        f"(${s['user_cost_usd_baseline']:,.0f} -> ${s['user_cost_usd']:,.0f})",
        f"grid energy saved  {s['grid_energy_saved_kwh']:8,.0f} kWh "
        f"({s['grid_energy_saved_pct']:.1f} %)",
        f"local / renewable  {s['local_kwh']:8,.0f} / {s['renewable_kwh']:,.0f} kWh; "
        f"incentives ${s['incentives_usd']:,.2f}",
        f"transactions       {s['tx_count']:8,d}, gas {s['total_gas']:,d}",
        f"scale              {s.get('agents', 0):8,d} agents signing, "
        f"{s.get('tx_total', 0):,d} transactions with set-up, {tx_per_s(s):,.0f} tx/s",
        "gas per operation (mean):",
    ]
    for op, g in sorted(s["gas_by_operation"].items()):
        lines.append(f"  {op:<28} {g['mean']:>10,.0f} x {g['count']}")
    cap = s["chain_capacity_used_pct"]
    b = s["chain_budget"]
    lines.append(
        f"chain capacity used (peak hour vs {b['block_gas_limit']:,} gas per "
        f"{b['block_period_s']} s block): " + ", ".join(f"{k} {v:.3f} %" for k, v in cap.items())
    )
    lines.append(
        f"OPF ({s['opf_mode']}): max relaxation gap {s['opf_max_relaxation_gap']:.2e}, "
        f"max |V_OPF - V_AC| {s['opf_max_v_error_pu']:.2e} p.u.; "
        f"voltages {s['v_min_pu']:.4f}..{s['v_max_pu']:.4f} p.u."
    )
    if s.get("opf_fallback_hours"):
        causes = sorted({f["cause"].split(",")[0] for f in s["opf_failures"]})
        lines.append(
            f"OPF infeasible in hour(s) {s['opf_fallback_hours']} ({'; '.join(causes)}): "
            "fallback grid_only (no local/renewable sale, grid at tariff)"
        )
    lines += format_attack_table(attacks_frame(s.get("attacks", [])))
    if s.get("resumed"):
        r = s["resumed"]
        served = ", ".join(f"{k} {v}" for k, v in r["tx_served_from_chain"].items())
        lines.append(
            f"resumed from hour {r['from_hour']}: transactions served from the chains (not "
            f"sent again): {served}"
            + (f"; blocks re-mined in hours {r['remined_hours']}" if r["remined_hours"] else "")
        )
    tm = s.get("timing_s", {})
    lines.append("wall time: " + ", ".join(f"{k} {v:.1f}" for k, v in tm.items()))
    return "\n".join(lines)


def tx_per_s(summary: dict[str, Any]) -> float:
    """Transactions (set-up included) per second of the run's wall time (0 if not known)."""
    wall = summary.get("timing_s", {}).get("wall_s", 0.0)
    return summary.get("tx_total", 0) / wall if wall else 0.0


def cmd_run(args: argparse.Namespace) -> int:
    from gridledger.checkpoint import load_checkpoint
    from gridledger.outdir import check_output_folder, check_writable
    from gridledger.runner import run_scenario

    if args.resume is not None:
        names = ("scenario", "hours", "seed", "households_per_bus", "out")
        given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is not None]
        if given or args.checkpoint is False:
            given += ["--no-checkpoint"] if args.checkpoint is False else []
            print(
                f"gridledger run: --resume takes the scenario and output folder from "
                f"{args.resume}; drop {' '.join(given)}",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        ckpt = load_checkpoint(args.resume)
        check_day_option(args.day, ckpt.scenario)
        if ckpt.complete:
            print(f"nothing to resume: all {ckpt.hours_planned} hours in {args.resume} are done")
            return 0
        out = args.resume
        check_writable(out)
        results = run_scenario(
            resume=out, chain=args.chain or "embedded", progress=not args.no_progress
        )
    else:
        chain = args.chain or "embedded"
        out = args.out or DEFAULT_OUT
        scenario = _load_scenario(args)
        check_day_option(args.day, scenario)
        check_output_folder(out, scenario, force=args.force)  # before the run, not after it
        from gridledger.chain import IN_PROCESS_SPECS

        in_process = chain.strip() in IN_PROCESS_SPECS  # nothing to resume: no checkpoints
        checkpoint = args.checkpoint if args.checkpoint is not None else not in_process
        results = run_scenario(
            scenario,
            chain=chain,
            progress=not args.no_progress,
            checkpoint_dir=out if checkpoint else None,
        )
    out = results.save(out)
    written = write_outputs(results, out, args, new_run=True)
    print(format_summary(results.summary))
    frames = ",".join(results.frames())
    csv = ", CSV" if args.format == "csv" else ""
    figs = sum(p.parent.name == "figures" for p in written)
    print(f"wrote {out}/{{{frames}}}.parquet{csv}, summary.json, {figs} figure files")
    print(period_tables_line(results))
    return 0


def check_day_option(day: str | None, scenario: Any) -> None:
    """`--day` of `gridledger run` checked against the scenario's days before the run
    (DayError naming the option and the run's days)."""
    if day is None:
        return
    import numpy as np

    from gridledger.timeline import parse_day, run_days

    parse_day(day, scenario, run_days(scenario, np.arange(scenario.hours)))


def period_tables_line(results: Any) -> str:
    """What `gridledger run` says of the daily and monthly tables it wrote."""
    daily, monthly = results.period_tables().values()
    line = f"daily.parquet: {len(daily)} day(s)"
    if monthly is None:
        return line + "; no monthly tables: the scenario has no start date (no months to sum)"
    return line + f"; monthly.parquet and monthly.csv: {len(monthly)} month(s)"


def cmd_report(args: argparse.Namespace) -> int:
    from gridledger.outdir import check_writable
    from gridledger.results import Results

    results = Results.load(args.dir)
    check_writable(Path(args.dir), name="results folder")
    for path in write_outputs(results, Path(args.dir), args):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from gridledger.chain import (
        ChainConnectionError,
        ChainError,
        NodeDownError,
        PreflightError,
        ResumeConflictError,
    )
    from gridledger.checkpoint import CheckpointError
    from gridledger.day.attacks import AttackSetupError
    from gridledger.day.world import MarketSetupError
    from gridledger.network.feeder import FeederDataError
    from gridledger.network.grid_data import GridSourceError
    from gridledger.network.pandapower_grid import GridModelError, GridTopologyError
    from gridledger.outdir import OutputFolderError
    from gridledger.results import ResultsError
    from gridledger.scenario import ScenarioError
    from gridledger.timeline import DayError

    bad_input = (
        DayError,
        ScenarioError,
        ResultsError,
        FeederDataError,
        GridSourceError,
        GridTopologyError,
        GridModelError,
        MarketSetupError,
        AttackSetupError,
        CheckpointError,
        OutputFolderError,
    )

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except bad_input as exc:  # bad input: named error, exit 2, nothing written (run saves last)
        print(f"gridledger {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NodeDownError as exc:  # one line what happened, one line what to do; no traceback
        print(f"gridledger {args.command}: node down: {exc}", file=sys.stderr)
        print(node_down_advice(exc), file=sys.stderr)
        return EXIT_NODE_DOWN
    except ChainConnectionError as exc:  # a node not reachable at the start
        print(
            f"gridledger {args.command}: cannot reach the node: {exc}; what to do: start it "
            "(e.g. `gridledger node`) or correct --chain URL_LETB,URL_RETB",
            file=sys.stderr,
        )
        return EXIT_NODE_DOWN
    except ResumeConflictError as exc:
        print(f"gridledger {args.command}: cannot resume: {exc}", file=sys.stderr)
        return EXIT_RESUME_CONFLICT
    except PreflightError as exc:  # names chain, URL, what failed and what to do
        print(f"gridledger {args.command}: node refused: {exc}", file=sys.stderr)
        return EXIT_NODE_REFUSED
    except ChainError as exc:
        print(f"gridledger {args.command}: {chain_error_line(exc, args)}", file=sys.stderr)
        return EXIT_CHAIN_FAILED


def chain_error_line(exc: Exception, args: argparse.Namespace) -> str:
    """One line for a chain error during a run: the chain, its URL, what failed, what to do."""
    from gridledger.chain import OutOfGasError, parse_chain_spec

    chain = str(getattr(exc, "chain", "") or "")
    url = str(getattr(exc, "url", "") or "")
    spec = getattr(args, "chain", None)
    if chain and not url and spec and spec != "embedded":
        url = parse_chain_spec(spec).get(chain, "")
    where = f"chain {chain!r} ({url or 'embedded'}): " if chain else f"{url}: " if url else ""
    what = " ".join(str(exc).split())  # one line, whatever the node sent
    if isinstance(exc, OutOfGasError):
        advice = (
            "check the node's fork (the contracts need "
            f"{_evm_version()}+, README 'Nodes and forks') and its gas limits"
        )
    else:
        advice = "compare with `--chain embedded`; README 'Nodes and forks' lists what a node needs"
    return f"{where}{type(exc).__name__}: {what}; what to do: {advice}"


def _evm_version() -> str:
    from gridledger.contracts import EVM_VERSION

    return EVM_VERSION


def node_down_advice(exc: Any) -> str:
    """What to do after a NodeDownError (printed under its one-line message)."""
    if not exc.checkpoint_dir:
        return (
            "what to do: restart the node and run again (nothing was saved: run with --out DIR "
            "--checkpoint to make a run resumable)"
        )
    return (
        f"what to do: restart the {exc.chain} node from its state (e.g. `gridledger node "
        f"--state-dir DIR` again), then: gridledger run --resume {exc.checkpoint_dir} "
        "(add --chain URL_LETB,URL_RETB if the nodes' URLs changed)"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
