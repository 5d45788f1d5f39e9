"""Checkpoints of a market day and resuming an interrupted one (issue 7, scenario 8).

With a checkpoint folder the model writes, after set-up and after every completed hour, the
Results of the hours so far (`ResultsJournal`: the hour's new rows appended as parts,
summary.json last; the summary says `hours` completed of `hours_planned`, `complete` false until
the last hour) and then `checkpoint.json`
(atomic, written last): the scenario, the chain spec, per chain the block the run started on and
the block at the end of set-up and of every completed hour (number and hash), and each signer's
next nonce after the last completed hour. A process that dies between two files leaves the
previous checkpoint in force; the results files are rewritten by the resumed run anyway.

`prepare_resume(checkpoint, spec)` connects to the chains (the nodes may have come back on other
URLs), checks that each is the chain the run started on (same block hash at the start block),
drops transactions the interrupted run left unmined in a node's pool, checks that the node can
serve historical state, and attaches a `ReplayLog` to each chain. `EnergyMarketModel.resume`
then rebuilds the model from the saved scenario and re-executes it: mined transactions are served
from the chain, never sent twice (gridledger/chain/replay.py); after each replayed hour
`check_replayed_hour` compares the chains with the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from gridledger.chain import (
    IN_PROCESS_SPECS,
    ChainBackend,
    ResumeConflictError,
    RpcChain,
    RpcError,
    make_chains,
)
from gridledger.chain.replay import ReplayLog, check_history
from gridledger.day.kpis import AGENT_COLUMNS, TRADE_COLUMNS, RunTotals
from gridledger.results import (
    APPENDED_FRAMES,
    PARTS_DIR,
    SCENARIO_FILE,
    SUMMARY_FILE,
    _atomic_write,
    _jsonable,
    hourly_frame,
    part_path,
    write_parquet,
)
from gridledger.scenario import Scenario

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel

__all__ = [
    "CHECKPOINT_FILE",
    "BlockRef",
    "Checkpoint",
    "CheckpointError",
    "block_ref",
    "chain_spec_of",
    "check_replayed_hour",
    "load_checkpoint",
    "prepare_resume",
    "remove_checkpoint",
    "write_checkpoint",
]

CHECKPOINT_FILE = "checkpoint.json"
FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or cannot be resumed; names the file and field."""


@dataclass(frozen=True)
class BlockRef:
    """A block by number and hash (the hash tells a re-mined block from the original)."""

    number: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "hash": self.hash}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BlockRef:
        return cls(int(data["number"]), str(data["hash"]))


def block_ref(chain: ChainBackend, number: int | str = "latest") -> BlockRef:
    """The chain's block `number` ('latest': during a resume's replay, the pinned block)."""
    b = chain.get_block(number)
    return BlockRef(int(b["number"]), str(b["hash"]))


def chain_spec_of(chains: Mapping[str, ChainBackend]) -> str:
    """The `--chain` value that reaches these chains ('embedded' or 'URL_LETB,URL_RETB')."""
    urls = [getattr(c, "url", None) for c in chains.values()]
    return "embedded" if None in urls else ",".join(str(u) for u in urls)


@dataclass
class Checkpoint:
    """What `checkpoint.json` holds (module docstring)."""

    scenario: Scenario
    chain_spec: str
    last_completed_hour: int
    start_blocks: dict[str, BlockRef]
    setup_blocks: dict[str, BlockRef]
    """Empty if the run stopped during set-up."""
    hour_blocks: list[dict[str, BlockRef]] = field(default_factory=list)
    nonces: dict[str, dict[str, int]] = field(default_factory=dict)
    """chain -> agent -> next nonce after the last completed hour (or set-up)."""

    @property
    def hours_planned(self) -> int:
        return self.scenario.hours

    @property
    def complete(self) -> bool:
        return self.last_completed_hour + 1 >= self.scenario.hours

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "chain": self.chain_spec,
            "hours_planned": self.hours_planned,
            "last_completed_hour": self.last_completed_hour,
            "complete": self.complete,
            "start_blocks": {c: b.to_json() for c, b in self.start_blocks.items()},
            "setup_blocks": {c: b.to_json() for c, b in self.setup_blocks.items()},
            "hour_blocks": [{c: b.to_json() for c, b in h.items()} for h in self.hour_blocks],
            "nonces": self.nonces,
            "scenario": self.scenario.to_dict(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "checkpoint") -> Checkpoint:
        def refs(d: dict[str, Any]) -> dict[str, BlockRef]:
            return {c: BlockRef.from_json(b) for c, b in d.items()}

        if data.get("format") != FORMAT:
            raise CheckpointError(
                f"{source}: field 'format' = {data.get('format')!r}, expected {FORMAT}"
            )
        try:
            ckpt = cls(
                scenario=Scenario.from_dict(data["scenario"]),
                chain_spec=str(data["chain"]),
                last_completed_hour=int(data["last_completed_hour"]),
                start_blocks=refs(data["start_blocks"]),
                setup_blocks=refs(data["setup_blocks"]),
                hour_blocks=[refs(h) for h in data["hour_blocks"]],
                nonces={c: {a: int(n) for a, n in d.items()} for c, d in data["nonces"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{source}: missing or malformed field ({exc!r})") from exc
        if len(ckpt.hour_blocks) != ckpt.last_completed_hour + 1:
            raise CheckpointError(
                f"{source}: {len(ckpt.hour_blocks)} hour block records for last completed hour "
                f"{ckpt.last_completed_hour}"
            )
        return ckpt


def _signer_nonces(model: EnergyMarketModel) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {c: {} for c in model.chains}
    for (agent, chain), s in getattr(model, "signers", {}).items():
        if s._nonce is not None:  # known locally (a signer never used has not fetched it)
            out[chain][agent] = s._nonce
    return out


def checkpoint_of(model: EnergyMarketModel) -> Checkpoint:
    """The model's checkpoint after its last completed hour (or set-up: -1)."""
    return Checkpoint(
        scenario=model.params,
        chain_spec=model.chain_spec,
        last_completed_hour=model.t - 1,
        start_blocks=dict(model.chain_start),
        setup_blocks=dict(model.chain_setup),
        hour_blocks=list(model.hour_blocks),
        nonces=_signer_nonces(model),
    )


class ResultsJournal:
    """A checkpointing run's results on disk, appended per hour, not rewritten.

    Checkpoint n (0: after set-up, t + 1: after hour t) writes only the rows the hourly, trades,
    gas and agents frames gained since checkpoint n - 1 as part n (`results.part_path`), then
    the summary (with `parts` = n + 1, its KPIs from running totals, `RunTotals`, extended by
    the new rows) and checkpoint.json: the cost of a checkpoint follows the hour's rows, not
    the run's. `Results.load` reads such a folder from
    its parts; `Results.save` (e.g. `gridledger run` at the end) writes whole frames and removes
    the parts. The run id stays the folder's across a resume.
    """

    def __init__(self, folder: Path, *, resume: bool = False) -> None:
        self.folder = folder
        self.run_id = (resume and _folder_parts_run_id(folder)) or uuid.uuid4().hex
        self.done = dict.fromkeys(APPENDED_FRAMES, 0)
        """Rows of each frame already in the parts."""
        self.totals: RunTotals | None = None
        """What the summary reads of the frames so far (built once, then extended per part)."""
        self.wrote_scenario = False

    @staticmethod
    def _rows(model: EnergyMarketModel) -> dict[str, int]:
        return {"hourly": len(model.hourly_rows), "trades": len(model.trade_rows),
                "gas": model.ledger.n_tx, "agents": len(model.agent_rows)}  # fmt: skip

    @staticmethod
    def _frame(model: EnergyMarketModel, name: str, start: int, stop: int) -> pd.DataFrame:
        if name == "gas":
            return model.ledger.gas(start, stop)
        if name == "hourly":
            return hourly_frame(model.hourly_rows[start:stop])
        rows, cols = (
            (model.trade_rows, TRADE_COLUMNS)
            if name == "trades"
            else (model.agent_rows, AGENT_COLUMNS)
        )
        return pd.DataFrame(rows[start:stop], columns=cols)

    def skip(self, model: EnergyMarketModel) -> None:
        """A resume re-executed a checkpointed hour: its rows are in the parts already."""
        self.done = self._rows(model)
        self.totals = None

    def append(self, model: EnergyMarketModel) -> None:
        """Checkpoint number model.t: the new rows as parts, hourly, scenario, summary."""
        rows = self._rows(model)
        if self.totals is None:  # the rows before this part (a resume's re-executed hours)
            done = {n: self._frame(model, n, 0, self.done[n]) for n in ("hourly", "gas")}
            self.totals = RunTotals.of(done["hourly"], done["gas"])
        new = {}
        for name in APPENDED_FRAMES:
            new[name] = self._frame(model, name, self.done[name], rows[name])
            path = part_path(self.folder, name, model.t)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(new[name], path, self.run_id)
        self.totals.add(new["hourly"], new["gas"])
        self.done = rows
        if not self.wrote_scenario:
            text = f"# run_id = {self.run_id}\n" + model.params.to_toml()
            _atomic_write(self.folder / SCENARIO_FILE, lambda p: p.write_text(text))
            self.wrote_scenario = True
        kpis = model.summary_kpis(self.totals)
        summary = {"run_id": self.run_id, "parts": model.t + 1, **_jsonable(kpis)}
        text = json.dumps(summary, indent=2, sort_keys=True, allow_nan=False)
        # replaced atomically, not fsynced: a partial folder is for reading while the run goes
        # on; a resume re-executes the run from checkpoint.json (fsynced) and the chains
        _atomic_write(self.folder / SUMMARY_FILE, lambda p: p.write_text(text), durable=False)


def _folder_parts_run_id(folder: Path) -> str | None:
    """The run id of a partial results folder (a resumed run keeps appending to it)."""
    with contextlib.suppress(OSError, ValueError):
        summary = json.loads((folder / SUMMARY_FILE).read_text())
        if "parts" in summary:
            return str(summary["run_id"])
    return None


def results_journal(model: EnergyMarketModel, folder: Path) -> ResultsJournal:
    """The model's journal into `folder` (made on first use)."""
    journal = getattr(model, "results_journal", None)
    if journal is None or journal.folder != folder:
        resume = model.resumed_from is not None
        journal = model.results_journal = ResultsJournal(folder, resume=resume)
    return journal


def write_checkpoint(model: EnergyMarketModel, folder: str | Path, *, results: bool = True) -> Path:
    """Results of the hours so far, appended (unless `results` is False: before set-up, when
    the parts of an earlier run in `folder` are removed), then checkpoint.json (atomic, last)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if results:
        results_journal(model, folder).append(model)
    else:
        shutil.rmtree(folder / PARTS_DIR, ignore_errors=True)
    text = json.dumps(checkpoint_of(model).to_json(), indent=1, sort_keys=True)
    path = folder / CHECKPOINT_FILE
    _atomic_write(path, lambda p: p.write_text(text))
    return path


def remove_checkpoint(folder: str | Path) -> None:
    """Undo `write_checkpoint(..., results=False)` of a run whose set-up failed for a reason a
    resume cannot cure: checkpoint.json and the parts go, and the folder if nothing else is in
    it (a folder with other files keeps them)."""
    folder = Path(folder)
    (folder / CHECKPOINT_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder / PARTS_DIR, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only if empty


def load_checkpoint(folder: str | Path) -> Checkpoint:
    """Read `folder/checkpoint.json` (CheckpointError naming the file if missing or bad)."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing (the folder of a run started with a checkpoint folder, e.g. "
            "`gridledger run --chain URLS --out DIR`, is needed)"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    return Checkpoint.from_json(data, str(path))


def prepare_resume(ckpt: Checkpoint, spec: str | None = None) -> dict[str, RpcChain]:
    """Connect to the run's chains (`spec` overrides the saved URLs) ready to replay.

    Raises CheckpointError for an embedded run (its chains ended with its process) and
    ResumeConflictError for a chain that is not the one the run started on."""
    spec = spec or ckpt.chain_spec
    sc = ckpt.scenario
    if spec.strip() in IN_PROCESS_SPECS:
        raise CheckpointError(
            "an embedded-chain run cannot be resumed: its chains lived in the process that "
            "stopped; run it again, or run on nodes (--chain URL_LETB,URL_RETB) to resume"
        )
    chains = make_chains(spec, {"letb": sc.letb_chain_id, "retb": sc.retb_chain_id})
    out: dict[str, RpcChain] = {}
    for name, chain in chains.items():
        assert isinstance(chain, RpcChain)
        start = ckpt.start_blocks.get(name)
        if start is None:
            raise CheckpointError(f"checkpoint has no start block for chain {name!r}")
        try:
            now = block_ref(chain, start.number)
        except ValueError:
            now = None
        if now is None or now.hash != start.hash:
            found = "has no such block" if now is None else f"has block hash {now.hash} there"
            raise ResumeConflictError(
                f"chain {name!r} at {chain.url} is not the chain the run started on: the run "
                f"started at block {start.number} (hash {start.hash}), the node {found} (a "
                "fresh or reset node? restart it from its state file, or pass the right "
                "--chain URLs)"
            )
        if chain.dev:  # what the interrupted run submitted but never mined: signed again
            with contextlib.suppress(RpcError):
                chain.request("anvil_dropAllTransactions", [])
        check_history(chain, start.number)
        chain.replay = ReplayLog(chain, start.number)
        out[name] = chain
    return out


def check_replayed_hour(model: EnergyMarketModel, t: int, ckpt: Checkpoint) -> None:
    """After re-executing hour t (-1: set-up) that the checkpoint records as completed: the
    chains must stand at the same block numbers; a different hash there means the node had
    lost those blocks and the resumed run mined them again (recorded in model.resume_info)."""
    saved = ckpt.setup_blocks if t < 0 else ckpt.hour_blocks[t]
    if not saved:  # the interrupted run never completed its set-up
        return
    for name, chain in model.chains.items():
        now = block_ref(chain)
        was = saved[name]
        if now.number != was.number:
            where = "set-up" if t < 0 else f"hour {t}"
            raise ResumeConflictError(
                f"chain {name!r}: the resumed run ended {where} at block {now.number}, the "
                f"interrupted run at block {was.number}: the re-execution diverged"
            )
        if now.hash != was.hash:
            model.resume_info["remined_hours"].setdefault(name, []).append(t)
    if t == ckpt.last_completed_hour:
        now_nonces = _signer_nonces(model)
        for name, saved_nonces in ckpt.nonces.items():
            bad = {
                a: (n, now_nonces[name].get(a))
                for a, n in saved_nonces.items()
                if now_nonces[name].get(a) != n
            }
            if bad:
                a, (n, m) = next(iter(bad.items()))
                raise ResumeConflictError(
                    f"chain {name!r}: after the last completed hour {t} the resumed run's next "
                    f"nonce of {a} is {m}, the interrupted run's was {n} ({len(bad)} signer(s) "
                    "differ): the re-execution diverged"
                )
