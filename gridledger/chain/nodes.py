"""Local dev nodes: find the pinned anvil binary, start one process per chain, stop cleanly.

`start_anvil(chain_id)` is a context manager used by tests and benchmarks; `main_node(args)` backs
the `gridledger node` CLI subcommand (one anvil for the LETB chain, one for the RETB chain).
The binary comes from `scripts/install-anvil` (npm package @foundry-rs/anvil, pinned version):
$GRIDLEDGER_ANVIL, then <project>/.tools/anvil/bin/anvil, then `anvil` on PATH.
`start_hardhat(chain_id)` starts Hardhat 3's node with its defaults (tests of other clients;
scripts/install-hardhat puts it and the Node 22 it needs in .tools/hardhat).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gridledger.chain.backend import DEFAULT_CHAIN_IDS, DEV_BLOCK_GAS_LIMIT
from gridledger.chain.errors import ChainError
from gridledger.contracts import EVM_VERSION

__all__ = [
    "AnvilNode",
    "AnvilNotFoundError",
    "AnvilStartError",
    "add_node_arguments",
    "find_anvil",
    "find_hardhat",
    "main_node",
    "start_anvil",
    "start_hardhat",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_ANVIL = PROJECT_ROOT / ".tools" / "anvil" / "bin" / "anvil"


class AnvilNotFoundError(ChainError):
    """No anvil binary in $GRIDLEDGER_ANVIL, .tools/anvil/bin/anvil or PATH."""


class AnvilStartError(ChainError):
    """anvil did not answer JSON-RPC in time (its output is in the message)."""


def find_anvil() -> Path:
    """Path of the anvil binary: $GRIDLEDGER_ANVIL, then .tools/anvil/bin/anvil, then PATH."""
    env = os.environ.get("GRIDLEDGER_ANVIL")
    if env:
        p = Path(env)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise AnvilNotFoundError(
            f"GRIDLEDGER_ANVIL={env} is not an executable file; run `scripts/install-anvil "
            ".tools/anvil` (or `make tools`) or unset it"
        )
    if LOCAL_ANVIL.is_file() and os.access(LOCAL_ANVIL, os.X_OK):
        return LOCAL_ANVIL
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise AnvilNotFoundError(
        "anvil not found: run `scripts/install-anvil .tools/anvil` (or `make tools`), "
        "or set GRIDLEDGER_ANVIL to the binary"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class AnvilNode:
    """A running anvil process bound to 127.0.0.1 (stop() or use as a context manager)."""

    chain_id: int
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, wait, then SIGKILL this process only."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    chain_id: int,
    port: int | None = None,
    *,
    block_gas_limit: int | None = DEV_BLOCK_GAS_LIMIT,
    balance_eth: int | None = 1_000_000,
    block_time_s: int | None = None,
    startup_timeout_s: float = 20.0,
    binary: Path | None = None,
    state_file: Path | None = None,
    state_interval_s: int = 1,
    keep_history: bool = True,
    order: str | None = "fifo",
    hardfork: str | None = EVM_VERSION,
    extra_args: tuple[str, ...] = (),
) -> AnvilNode:
    """Start anvil on 127.0.0.1 with `chain_id`, wait until it answers, return the node.

    No automatic mining (`--no-mining`: blocks are mined by `evm_mine`, one per market hour or
    phase), FIFO transaction order (arrival order: `RpcChain` sends a phase in order,
    docs/block-order.md; `order="fees"`: highest priority fee first, as a public node orders),
    a large block gas limit, the fork the contracts
    are built for (`hardfork`, default gridledger.contracts.EVM_VERSION; None: anvil's own
    default). `block_gas_limit`, `balance_eth`, `order` None: anvil's defaults (30M gas, 10,000
    coins per account, fee order). `extra_args` go to anvil as they are (tests:
    `--enable-tx-gas-limit`, ...).
    `block_time_s` instead mines a block every so many seconds, like a real network.

    `state_file`: the node's chain persists there (`--state`: loaded at start if it exists,
    dumped on SIGTERM and every `state_interval_s` seconds) with its historical states
    (`--preserve-historical-states`: a resumed run reads the state of earlier blocks;
    `keep_history=False` leaves them out). Measured with anvil 1.7.1: SIGTERM keeps every
    block, receipt and nonce; SIGKILL keeps what the last periodic dump held (nothing if killed
    before the first one: the node then starts a new chain with a new genesis hash).
    """

    if not 0 < int(chain_id) < 2**64:
        raise ValueError(f"chain_id must be a positive integer below 2**64, got {chain_id}")
    if order not in ("fifo", "fees", None):
        raise ValueError(f"order must be 'fifo' or 'fees', got {order!r}")
    exe = binary or find_anvil()
    port = port or free_port()
    cmd = [
        str(exe),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(int(chain_id)),
        *(["--gas-limit", str(int(block_gas_limit))] if block_gas_limit else []),
        *(["--balance", str(int(balance_eth))] if balance_eth else []),
        "--accounts", "2",
        *(["--block-time", str(int(block_time_s))] if block_time_s else ["--no-mining"]),
        *(["--order", order] if order else []),
        "--silent",
        *(["--hardfork", hardfork] if hardfork else []),
        *extra_args,
    ]  # fmt: skip
    if state_file is not None:
        cmd += ["--state", str(state_file), "--state-interval", str(int(state_interval_s))]
        cmd += ["--preserve-historical-states"] if keep_history else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return _serving(AnvilNode(chain_id=int(chain_id), port=port, process=proc), startup_timeout_s)


def _serving(node: AnvilNode, timeout_s: float, client: str = "anvil") -> AnvilNode:
    """Wait until `node` answers eth_chainId with its chain id; AnvilStartError otherwise."""
    import requests

    proc, chain_id = node.process, node.chain_id
    deadline = time.monotonic() + timeout_s
    payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            node.stop()
            raise AnvilStartError(
                f"{client} exited with code {proc.returncode} (port {node.port}, chain id "
                f"{chain_id}): {err.strip()[-2000:]}"
            )
        with contextlib.suppress(requests.RequestException, ValueError):
            r = requests.post(node.url, json=payload, timeout=1.0)
            if r.status_code == 200 and int(r.json()["result"], 16) == int(chain_id):
                return node
        if time.monotonic() > deadline:
            node.stop()
            raise AnvilStartError(
                f"{client} on {node.url} (chain id {chain_id}) did not answer within "
                f"{timeout_s:.0f} s"
            )
        time.sleep(0.05)


LOCAL_HARDHAT = PROJECT_ROOT / ".tools" / "hardhat" / "bin" / "hardhat-node"
"""`hardhat node` with its own Node 22 (scripts/install-hardhat .tools/hardhat)."""


def find_hardhat() -> Path:
    """The hardhat-node wrapper: $GRIDLEDGER_HARDHAT, else .tools/hardhat/bin/hardhat-node."""
    p = Path(os.environ.get("GRIDLEDGER_HARDHAT") or LOCAL_HARDHAT)
    if p.is_file() and os.access(p, os.X_OK):
        return p
    raise AnvilNotFoundError(
        f"no Hardhat node at {p}: run `scripts/install-hardhat .tools/hardhat` (or `make tools`)"
    )


def start_hardhat(
    chain_id: int, port: int | None = None, *, startup_timeout_s: float = 60.0
) -> AnvilNode:
    """Start Hardhat 3's node on 127.0.0.1 with `chain_id` and its other defaults (fork,
    balances, block gas limit, automine), wait until it answers, return the node."""
    port = port or free_port()
    cmd = [str(find_hardhat()), "--hostname", "127.0.0.1", "--port", str(port)]
    cmd += ["--chain-id", str(int(chain_id))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    node = AnvilNode(chain_id=int(chain_id), port=port, process=proc)
    return _serving(node, startup_timeout_s, client="hardhat node")


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `gridledger node` (the CLI calls this on its subparser)."""
    parser.add_argument(
        "--port",
        type=int,
        default=8545,
        help="port of the LETB chain; the RETB chain uses port+1 (default 8545)",
    )
    parser.add_argument("--letb-chain-id", type=int, default=DEFAULT_CHAIN_IDS["letb"])
    parser.add_argument("--retb-chain-id", type=int, default=DEFAULT_CHAIN_IDS["retb"])  # fmt: skip
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="persist each chain in DIR/{letb,retb}.json (loaded at start, dumped every "
        "--state-interval seconds and on exit): restart with the same DIR after a crash and "
        "`gridledger run --resume` continues the interrupted run",
    )
    parser.add_argument("--state-interval", type=int, default=1, help="seconds between dumps")


def main_node(args: argparse.Namespace) -> int:
    """`gridledger node`: start one anvil per chain, print the --chain value, wait for Ctrl-C.

    `args` needs `port`, `letb_chain_id`, `retb_chain_id` (see `add_node_arguments`).
    Returns the process exit code (0 after Ctrl-C, 1 if a node failed).
    """
    port = int(getattr(args, "port", 8545))
    ids = (int(getattr(args, "letb_chain_id", DEFAULT_CHAIN_IDS["letb"])),
           int(getattr(args, "retb_chain_id", DEFAULT_CHAIN_IDS["retb"])))  # fmt: skip
    if ids[0] == ids[1]:
        print(f"gridledger node: the two chains need distinct chain ids, got {ids[0]} twice",
              file=sys.stderr)  # fmt: skip
        return 2
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore Ctrl-C and let SIGTERM stop the nodes the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    nodes: list[AnvilNode] = []
    state_dir = getattr(args, "state_dir", None)
    if state_dir is not None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
    try:
        for i, cid in enumerate(ids):
            state = Path(state_dir) / f"{('letb', 'retb')[i]}.json" if state_dir else None
            nodes.append(
                start_anvil(
                    cid,
                    port + i,
                    state_file=state,
                    state_interval_s=int(getattr(args, "state_interval", 1)),
                )
            )
        spec = ",".join(n.url for n in nodes)
        print(f"LETB chain: {nodes[0].url}  (chain id {ids[0]})")
        print(f"RETB chain: {nodes[1].url}  (chain id {ids[1]})")
        print(f"run with:   gridledger run --chain {spec}")
        print("Ctrl-C stops both nodes.", flush=True)
        while all(n.alive() for n in nodes):
            time.sleep(0.5)
        print("gridledger node: an anvil process exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except ChainError as exc:
        print(f"gridledger node: {exc}", file=sys.stderr)
        return 1
    finally:
        for n in nodes:
            n.stop()
