"""A model's checkpoint and resume glue (issue 7, scenario 8): what `EnergyMarketModel` does to
save a completed hour, name a node that went down, and rebuild an interrupted run.

The checkpoint's format and the results journal are gridledger/checkpoint.py; serving the
transactions a chain already holds is gridledger/chain/replay.py. Here: the model's side.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridledger.chain import ChainConnectionError, NodeDownError, RpcChain
from gridledger.checkpoint import (
    load_checkpoint,
    prepare_resume,
    results_journal,
    write_checkpoint,
)
from gridledger.markets.phases import Phase

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel

__all__ = ["finish_replay", "node_down", "resume_model", "resume_summary", "save_hour"]


def resume_model(
    cls: type[EnergyMarketModel], folder: str | Path, chain: str | None
) -> EnergyMarketModel:
    """`EnergyMarketModel.resume`: load the checkpoint, reconnect its chains (NodeDownError if
    a node is still down), rebuild the model re-executing set-up against them."""
    ckpt = load_checkpoint(folder)
    try:
        chains = prepare_resume(ckpt, chain)
    except ChainConnectionError as exc:
        raise NodeDownError(
            chain=exc.chain,
            url=exc.url,
            t=ckpt.last_completed_hour + 1 if not ckpt.complete else None,
            phase=str(Phase.RESUME),
            last_completed_hour=ckpt.last_completed_hour,
            checkpoint_dir=str(folder),
            cause=exc.reason,
        ) from exc
    t0 = time.perf_counter()
    model = cls(ckpt.scenario, chain=chains, checkpoint_dir=folder, _resume=ckpt)
    model.timing["resume_setup_s"] += time.perf_counter() - t0
    return model


def node_down(model: EnergyMarketModel, exc: ChainConnectionError, t: int | None) -> NodeDownError:
    """The NodeDownError for a node lost in hour t (None: in set-up): the chain, its URL, the
    step running and the last hour saved."""
    ckpt = model.checkpoint_dir
    saved = model.t - 1 if t is not None else -1
    if model.resumed_from is not None:
        saved = max(saved, model.resumed_from.last_completed_hour)
    return NodeDownError(
        chain=exc.chain,
        url=exc.url,
        t=t,
        phase=str(model.stage),
        last_completed_hour=saved,
        checkpoint_dir=str(ckpt) if ckpt is not None else "",
        cause=exc.reason,
    )


def save_hour(model: EnergyMarketModel) -> None:
    """Results so far + checkpoint.json (skipped for hours a resume re-executes: the folder
    already holds them, rewriting fewer hours would only lose some)."""
    r = model.resumed_from
    if model.checkpoint_dir is None:
        return
    if r is not None and model.t - 1 <= r.last_completed_hour:
        results_journal(model, model.checkpoint_dir).skip(model)
        return
    t0 = time.perf_counter()
    write_checkpoint(model, model.checkpoint_dir)
    model.timing["checkpoint_s"] += time.perf_counter() - t0
    model.checkpoint_times_s.append(time.perf_counter() - t0)


def finish_replay(model: EnergyMarketModel) -> None:
    """End of a resumed run: every transaction the chains held must have been served."""
    for c in model.chains.values():
        if isinstance(c, RpcChain) and c.replaying:
            c.replay.finish(None)


def resume_summary(model: EnergyMarketModel) -> dict[str, Any]:
    """What a resume found: hours restored, transactions served vs sent, re-mined hours."""
    r = model.resumed_from
    assert r is not None
    served = {
        name: (c.replay.served if isinstance(c, RpcChain) and c.replay else 0)
        for name, c in model.chains.items()
    }
    return {
        "from_hour": r.last_completed_hour + 1,
        "tx_served_from_chain": served,
        "remined_hours": {k: list(v) for k, v in model.resume_info["remined_hours"].items()},
    }
