"""Run a whole scenario in one call (`run_scenario`): build or resume an `EnergyMarketModel`,
step it to the end and return its Results, with a progress bar on stderr.

The model itself (what a run holds, one step = one market hour) is gridledger/model.py; the
checkpoint and resume glue is gridledger/resume.py. `run_scenario` is also importable from
`gridledger` and `gridledger.model`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridledger.model import EnergyMarketModel
from gridledger.results import Results
from gridledger.scenario import Scenario
from gridledger.timeline import hour_label

__all__ = ["run_scenario", "run_with_bar"]


def _say(line: str) -> None:
    print(line, flush=True)


def run_scenario(
    scenario: Scenario | None = None,
    *,
    chain: str = "embedded",
    seed: int | None = None,
    progress: bool | Callable[[dict[str, Any]], None] = True,
    checkpoint_dir: str | Path | None = None,
    resume: str | Path | None = None,
) -> Results:
    """Run a whole scenario and return its Results (progress bar on stderr if `progress`).

    `checkpoint_dir`: save results + checkpoint after every hour (resumable on RPC chains).
    `resume`: continue the interrupted run checkpointed in that folder (its scenario and, unless
    `chain` is given, its chain URLs); `scenario` and `seed` must then be left out."""
    if resume is not None:
        if scenario is not None or seed is not None:
            raise ValueError("run_scenario(resume=...) takes the scenario from the checkpoint")
        model = EnergyMarketModel.resume(resume, chain=None if chain == "embedded" else chain)
    else:
        model = EnergyMarketModel(
            scenario or Scenario(),
            chain=chain,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            log=_say if chain != "embedded" else None,
        )
    if callable(progress):
        return model.run(progress)
    if not progress:
        return model.run()
    return run_with_bar(model)


def run_with_bar(model: EnergyMarketModel) -> Results:
    """`model.run()` with a tqdm bar on stderr: one tick per market hour, the simulated time of
    the hour being run, its transactions, the transactions per second and the grid import."""
    from tqdm import tqdm

    sc = model.params
    # the description is the simulated time of the hour being run ("2016-06-01 07:00" or
    # "day 1 07:00"), the last hour's once the run is done
    with tqdm(total=sc.hours, unit="h", desc=hour_label(sc, model.t)) as bar:
        sent = [0, time.perf_counter()]  # market-hour transactions so far, start of the hours

        def tick(row: dict[str, Any]) -> None:
            sent[0] += row["tx_count"]
            rate = sent[0] / max(time.perf_counter() - sent[1], 1e-9)
            bar.update(1)
            bar.set_description(hour_label(sc, min(model.t, sc.hours - 1)), refresh=False)
            bar.set_postfix(  # refreshes the bar: count, simulated time and figures together
                tx=row["tx_count"], tx_s=f"{rate:.0f}", grid_kwh=f"{row['grid_import_kwh']:.0f}"
            )

        return model.run(tick)
