"""The py-evm backend: an in-process chain through eth-tester (`--chain pyevm`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import to_canonical_address, to_checksum_address

from gridledger.chain.backend import CALL_GAS, DEV_BLOCK_GAS_LIMIT, ChainBackend
from gridledger.chain.errors import (
    CallReverted,
    ChainIdMismatchError,
    InsufficientFundsError,
    InvalidSignatureError,
    NonceError,
    TransactionRejected,
    decode_revert_reason,
)
from gridledger.chain.tx import Log, PendingTx, TxResult, _account_from_key, _failure

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


@dataclass
class _LocalOutcome:
    receipt: Any
    computation: Any
    evm_tx: Any
    gas_used: int
    log_offset: int


EMBEDDED_VMS = {"shanghai": "ShanghaiVM", "cancun": "CancunVM", "prague": "PragueVM"}
"""py-evm VM class (in eth.vm.forks) of each fork the embedded chain can run."""


def embedded_vm_class(evm_version: str) -> type:
    """py-evm's VM class for `evm_version` (gridledger.contracts.EVM_VERSION by default)."""
    import eth.vm.forks

    if evm_version not in EMBEDDED_VMS:
        raise ValueError(f"evm_version must be one of {sorted(EMBEDDED_VMS)}, got {evm_version!r}")
    return getattr(eth.vm.forks, EMBEDDED_VMS[evm_version])


class EmbeddedChain(ChainBackend):
    """An in-process py-evm chain with its own chain id and 'batch then mine' blocks.

    It runs the fork `evm_version` (default: the contracts' build target,
    gridledger.contracts.EVM_VERSION), as anvil does with `--hardfork`.

    Submitted transactions execute at once in the pending block (each once: the block's tries
    are built when `mine()` seals it, not per transaction), so a revert is known immediately and
    reported on the result after `mine()`, as on a node.
    """

    kind = "embedded"

    def __init__(
        self,
        chain_id: int = 1337,
        name: str = "embedded",
        *,
        block_gas_limit: int = DEV_BLOCK_GAS_LIMIT,
        evm_version: str | None = None,
    ) -> None:
        from eth_tester import PyEVMBackend
        from eth_tester.backends.pyevm.main import get_default_genesis_params

        from gridledger.contracts import EVM_VERSION

        super().__init__(name, chain_id)
        self.evm_version = evm_version or EVM_VERSION
        vm = embedded_vm_class(self.evm_version)
        params = get_default_genesis_params(overrides={"gas_limit": int(block_gas_limit)})
        self.backend = PyEVMBackend(genesis_parameters=params, vm_configuration=((0, vm),))
        # eth-tester hard-codes its chain id on the chain class; set ours on the instance
        # (py-evm builds each VM's ChainContext -- the CHAINID opcode -- from it).
        self.backend.chain.chain_id = self.chain_id
        self._evm = self.backend.chain
        self._builder = self._evm.get_vm().get_transaction_builder()
        self._vm: Any = None
        self._work_header: Any = None
        self._block_logs = 0  # logs in the pending block so far: the next receipt's log offset
        self._faucet = _account_from_key(self.backend.account_keys[0].to_bytes())
        self._w3: Any = None

    @property
    def faucet(self) -> LocalAccount:
        return self._faucet

    @property
    def w3(self) -> Any:
        """A web3.Web3 over this chain (reads only; eth_chainId answers this chain's id)."""
        if self._w3 is None:
            from eth_tester import EthereumTester
            from web3 import EthereumTesterProvider, Web3

            chain_id = self.chain_id

            class _Provider(EthereumTesterProvider):
                def make_request(self, method: Any, params: Any) -> Any:
                    if method == "eth_chainId":
                        return {"jsonrpc": "2.0", "id": 0, "result": hex(chain_id)}
                    return super().make_request(method, params)

            tester = EthereumTester(self.backend, auto_mine_transactions=True)
            self._w3 = Web3(_Provider(tester))
        return self._w3

    # ---- pending block ----
    def _working_vm(self) -> Any:
        if self._vm is None:
            self._vm = self._evm.get_vm(self._evm.header)
            self._work_header = self._evm.header
        return self._vm

    def _submit(self, ptx: PendingTx) -> None:
        from eth_keys.exceptions import BadSignature
        from eth_utils.exceptions import ValidationError as EthValidationError

        try:
            evm_tx = self._builder.decode(ptx.raw)
        except Exception as exc:
            raise TransactionRejected(f"undecodable raw transaction: {exc}") from exc
        if evm_tx.chain_id != self.chain_id:  # decode agrees with raw_tx_chain_id; belt+braces
            raise ChainIdMismatchError(
                f"signed for chain id {evm_tx.chain_id}, chain {self.name!r} is {self.chain_id}"
            )
        vm = self._working_vm()
        before = self._work_header
        try:
            receipt, computation = vm.apply_transaction(before, evm_tx)
        except BadSignature as exc:
            raise InvalidSignatureError(f"bad signature: {exc}", agent=ptx.agent) from exc
        except EthValidationError as exc:
            msg = str(exc)
            label = dict(agent=ptx.agent, contract=ptx.contract, function=ptx.function)
            if "nonce" in msg.lower():
                raise NonceError(msg, **label) from exc
            if "afford" in msg or "balance" in msg:
                raise InsufficientFundsError(msg, **label) from exc
            raise TransactionRejected(msg, **label) from exc
        after = vm.add_receipt_to_header(before, receipt)
        self._work_header = after
        ptx._local = _LocalOutcome(
            receipt, computation, evm_tx, after.gas_used - before.gas_used, self._block_logs
        )
        self._block_logs += len(receipt.logs)

    def _mine_pending(self, pending: list[PendingTx]) -> list[TxResult]:
        from eth.vm.forks import CancunVM

        vm = self._working_vm()
        vm.state.persist()
        header = self._work_header.copy(state_root=vm.state.state_root)
        txs = tuple(p._local.evm_tx for p in pending)
        receipts = tuple(p._local.receipt for p in pending)
        block = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, txs, receipts)
        kwargs: dict[str, Any] = {"mix_hash": os.urandom(32)}
        if isinstance(vm, CancunVM):  # and later forks
            kwargs["blob_gas_used"] = 0
        mined = vm.mine_block(block, **kwargs).block
        self._evm.validate_block(mined)
        self._evm.chaindb.persist_block(mined)
        self._evm.header = self._evm.create_header_from_parent(mined.header)
        self._vm = None
        self._work_header = None
        self._block_logs = 0
        block_hash = "0x" + mined.hash.hex()
        results = []
        for p in pending:
            out: _LocalOutcome = p._local
            comp = out.computation
            logs = tuple(
                Log(
                    address=to_checksum_address(lg.address),
                    topics=tuple(t.to_bytes(32, "big") for t in lg.topics),
                    data=bytes(lg.data),
                    log_index=out.log_offset + i,
                )
                for i, lg in enumerate(out.receipt.logs)
            )
            created = None
            if not out.evm_tx.to and comp.is_success:
                created = to_checksum_address(comp.msg.storage_address)
            res = p.to_result(
                self.name,
                block_number=mined.number,
                block_hash=block_hash,
                gas_used=out.gas_used,
                status=0 if comp.is_error else 1,
                logs=logs,
                contract_address=created,
            )
            if comp.is_error:
                from eth.exceptions import OutOfGas, Revert

                err = comp.error
                if isinstance(err, Revert):
                    res.error = _failure(
                        self.name, p, out_of_gas=False, reason=decode_revert_reason(comp.output)
                    )
                else:  # out of gas, invalid opcode, stack errors: all burn the whole limit
                    cause = "out of gas" if isinstance(err, OutOfGas) else repr(err)
                    res.error = _failure(self.name, p, out_of_gas=True, reason=cause)
            p._local = None
            results.append(res)
        return results

    # ---- reads ----
    def _read_header(self, block: int | str) -> Any:
        if block == "pending":
            vm = self._working_vm()
            vm.state.persist()  # as MiningChain.apply_transaction does after every tx
            return self._work_header.copy(state_root=vm.state.state_root)
        n = self.block_number() if block == "latest" else int(block)
        if not 0 <= n <= self.block_number():
            raise ValueError(f"block {block!r} not mined on chain {self.name!r}")
        return self._evm.get_canonical_block_header_by_number(n)

    def _read_state(self, block: int | str) -> Any:
        if block == "pending":
            return self._working_vm().state
        return self._evm.get_vm(self._read_header(block)).state

    def call(
        self,
        to: str,
        data: bytes,
        *,
        sender: str | None = None,
        block: int | str = "latest",
        value: int = 0,
    ) -> bytes:
        from eth.exceptions import Revert
        from eth.vm.spoof import SpoofTransaction

        vm = self._evm.get_vm(self._read_header(block))
        frm = to_canonical_address(sender) if sender else b"\x00" * 20
        with vm.in_costless_state() as state:
            unsigned = vm.create_unsigned_transaction(
                nonce=state.get_nonce(frm),
                gas_price=0,
                gas=CALL_GAS,
                to=to_canonical_address(to),
                value=value,
                data=bytes(data),
            )
            comp = state.costless_execute_transaction(SpoofTransaction(unsigned, from_=frm))
        if comp.is_error:
            err = comp.error
            reason = decode_revert_reason(comp.output) if isinstance(err, Revert) else repr(err)
            raise CallReverted(reason)
        return bytes(comp.output)

    def nonce(self, address: str, block: int | str = "pending") -> int:
        return self._read_state(block).get_nonce(to_canonical_address(address))

    def balance(self, address: str, block: int | str = "latest") -> int:
        return self._read_state(block).get_balance(to_canonical_address(address))

    def block_number(self) -> int:
        return self._evm.header.block_number - 1

    def get_block(self, number: int | str = "latest") -> dict[str, Any]:
        n = self.block_number() if number == "latest" else int(number)
        if not 0 <= n <= self.block_number():
            raise ValueError(f"block {number!r} not mined on chain {self.name!r}")
        blk = self._evm.get_canonical_block_by_number(n)
        h = blk.header
        return {
            "number": h.block_number,
            "hash": "0x" + h.hash.hex(),
            "parent_hash": "0x" + h.parent_hash.hex(),
            "gas_used": h.gas_used,
            "gas_limit": h.gas_limit,
            "timestamp": h.timestamp,
            "tx_count": len(blk.transactions),
        }

    def base_fee(self) -> int:
        hdr = self._work_header if self._work_header is not None else self._evm.header
        return int(getattr(hdr, "base_fee_per_gas", 0) or 0)
