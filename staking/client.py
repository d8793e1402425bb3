"""``StakingClient``: typed async access to every contract of a deployment, for one account.

Every write waits for its receipt and checks its status (through :class:`~staking.transactions.Transactor`);
every read returns the dataclasses of :mod:`staking.types`; amounts are wei.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.logs import DISCARD
from web3.types import EventData, TxReceipt

from .deploy import CONTRACT_NAMES, Deployment, load_deployment
from .eip712 import Domain, Permit, Receipt, TransferWithAuthorization, Voucher, sign
from .errors import ChainError
from .settings import ChainSettings
from .transactions import Transactor, connect
from .types import (
    AgentInfo,
    Channel,
    ChannelState,
    Contribution,
    Datanet,
    Dispute,
    DisputeKind,
    DisputeState,
    EpochCommitment,
    EpochStatus,
    Model,
    Role,
    StakeInfo,
    Unbonding,
)

__all__ = ["StakingClient"]

_MAX_UINT256 = 2**256 - 1


class StakingClient:
    """Everything a user, an agent host or a validator daemon does on chain.

    Example:
        >>> client = await StakingClient.from_settings(ChainSettings.load("staked.toml"))   # doctest: +SKIP
        >>> await client.stake(Role.AGENT, to_wei_open(1_000))                              # doctest: +SKIP
        >>> (await client.stake_info(client.address, Role.AGENT)).active                    # doctest: +SKIP

    Args:
        w3: connection to the deployment's chain.
        deployment: the deployed suite (its chain id must be the node's).
        account: the signing account; writes are refused without one.
        transactor_options: passed to :class:`Transactor` (confirmations, gas margin, ...).
    """

    def __init__(
        self, w3: AsyncWeb3[Any], deployment: Deployment, account: LocalAccount | None = None, **transactor_options: Any
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self._sender = Transactor(w3, account, **transactor_options) if account else None
        self._contracts = {name: deployment.contract(w3, name) for name in CONTRACT_NAMES}
        self.token = self._contracts["OpenToken"]
        self.staking = self._contracts["AgentStaking"]
        self.channels = self._contracts["PaymentChannels"]
        self.receipts = self._contracts["ReceiptRegistry"]
        self.disputes = self._contracts["DisputeManager"]
        self.datanets = self._contracts["DatanetRegistry"]

    def __repr__(self) -> str:
        who = self.account.address if self.account else "read-only"
        return f"<StakingClient chain={self.deployment.chain_id} account={who}>"

    @classmethod
    async def from_settings(cls, settings: ChainSettings, account: LocalAccount | None = None) -> StakingClient:
        """Connects as ``settings`` say: the deployment file, its chain id checked, the keystore or env key.

        Raises:
            ConfigError: the deployment file or key is missing or invalid.
            ChainUnavailableError / WrongChainError: the RPC is down or serves another chain.
        """
        deployment = load_deployment(settings.deployment_file)
        w3 = await connect(settings.rpc_url, expected_chain_id=deployment.chain_id)
        if account is None:
            account = await settings.signing_account()
        return cls(w3, deployment, account, **settings.transactor_options())

    @property
    def address(self) -> str:
        """The signing account's address."""
        return self._require_sender().address

    def _require_sender(self) -> Transactor:
        if self._sender is None:
            raise ChainError("this client is read-only: give it an account to send transactions")
        return self._sender

    async def _send(self, contract: str, function: str, *args: Any) -> TxReceipt:
        call = getattr(self._contracts[contract].functions, function)(*args)
        return await self._require_sender().send(call, action=f"{contract}.{function}")

    def _events(self, contract: str, event: str, receipt: TxReceipt) -> tuple[EventData, ...]:
        """The ``event`` logs of ``contract`` in ``receipt`` (other contracts' logs are skipped)."""
        return tuple(getattr(self._contracts[contract].events, event)().process_receipt(receipt, errors=DISCARD))

    # -- OPEN ------------------------------------------------------------------------------------------------------

    def token_domain(self) -> Domain:
        """The EIP-712 domain of OPEN (permit and EIP-3009 authorizations)."""
        return Domain("Open", "1", self.deployment.chain_id, self.token.address)

    async def balance_of(self, owner: str) -> int:
        return int(await self.token.functions.balanceOf(owner).call())

    async def allowance(self, owner: str, spender: str) -> int:
        return int(await self.token.functions.allowance(owner, spender).call())

    async def transfer(self, to: str, amount: int) -> TxReceipt:
        return await self._send("OpenToken", "transfer", to, amount)

    async def approve(self, spender: str, amount: int) -> TxReceipt:
        return await self._send("OpenToken", "approve", spender, amount)

    async def _ensure_allowance(self, spender: str, amount: int) -> None:
        if await self.allowance(self.address, spender) < amount:
            await self.approve(spender, amount)

    def sign_transfer_authorization(
        self, to: str, value: int, *, valid_after: int, valid_before: int, nonce: bytes | None = None
    ) -> tuple[TransferWithAuthorization, bytes]:
        """This account's EIP-3009 authorization paying ``to`` (an x402 ``exact`` payment) and its signature.

        The window is exclusive on both ends, in block time; the nonce is random unless given.
        """
        if self.account is None:
            raise ChainError("signing an authorization needs the payer's account")
        authorization = TransferWithAuthorization(
            self.account.address, to, value, valid_after, valid_before, nonce or secrets.token_bytes(32)
        )
        return authorization, sign(self.account, self.token_domain(), authorization)

    async def transfer_with_authorization(
        self, authorization: TransferWithAuthorization, signature: bytes
    ) -> TxReceipt:
        """Settles someone's signed EIP-3009 authorization (anyone may submit it)."""
        return await self._send("OpenToken", "transferWithAuthorization", *authorization.as_tuple(), signature)

    async def sign_permit(self, owner: LocalAccount, spender: str, value: int, deadline: int) -> bytes:
        """``owner``'s EIP-2612 signature approving ``spender``; anyone may submit it with :meth:`permit`."""
        nonce = int(await self.token.functions.nonces(owner.address).call())
        return sign(owner, self.token_domain(), Permit(owner.address, spender, value, nonce, deadline))

    async def permit(self, owner: str, spender: str, value: int, deadline: int, signature: bytes) -> TxReceipt:
        r, s, v = signature[:32], signature[32:64], signature[64]
        return await self._send("OpenToken", "permit", owner, spender, value, deadline, v, r, s)

    # -- AgentStaking ----------------------------------------------------------------------------------------------

    async def stake(self, role: Role, amount: int) -> TxReceipt:
        """Stakes ``amount`` in ``role``, approving the staking contract first when needed."""
        await self._ensure_allowance(self.staking.address, amount)
        return await self._send("AgentStaking", "stake", role, amount)

    async def request_unstake(self, role: Role, amount: int) -> TxReceipt:
        return await self._send("AgentStaking", "requestUnstake", role, amount)

    async def withdraw_stake(self, role: Role) -> int:
        """Withdraws every unlocked entry of ``role``; returns the amount paid."""
        receipt = await self._send("AgentStaking", "withdraw", role)
        return sum(int(event["args"]["amount"]) for event in self._events("AgentStaking", "Withdrawn", receipt))

    async def register_agent(self, signer: str, model_id: bytes, price: int, endpoint: str) -> TxReceipt:
        return await self._send("AgentStaking", "registerAgent", signer, model_id, price, endpoint)

    async def update_agent(self, signer: str, model_id: bytes, price: int, endpoint: str) -> TxReceipt:
        return await self._send("AgentStaking", "updateAgent", signer, model_id, price, endpoint)

    async def stake_info(self, operator: str, role: Role) -> StakeInfo:
        functions = self.staking.functions
        active, unbonding, slashable, entries = await asyncio.gather(
            functions.activeStake(operator, role).call(),
            functions.unbondingStake(operator, role).call(),
            functions.slashableStake(operator, role).call(),
            functions.unbondings(operator, role).call(),
        )
        return StakeInfo(
            operator=operator,
            role=Role(role),
            active=int(active),
            unbonding=int(unbonding),
            slashable=int(slashable),
            entries=tuple(Unbonding(int(amount), int(unlock)) for amount, unlock in entries),
        )

    async def agent_info(self, operator: str) -> AgentInfo:
        (signer, model_id, price, endpoint), active = await asyncio.gather(
            self.staking.functions.agentInfo(operator).call(), self.staking.functions.isActiveAgent(operator).call()
        )
        return AgentInfo(operator, signer, bytes(model_id), int(price), endpoint, bool(active))

    async def operator_of_signer(self, signer: str) -> str:
        return str(await self.staking.functions.operatorOfSigner(signer).call())

    async def is_active(self, operator: str, role: Role) -> bool:
        """Whether ``operator`` holds at least the minimum stake of ``role`` (and, as an agent, is registered)."""
        function = (
            self.staking.functions.isActiveAgent if role is Role.AGENT else self.staking.functions.isActiveValidator
        )
        return bool(await function(operator).call())

    async def minimum_stake(self, role: Role) -> int:
        return int(await self.staking.functions.minimumStake(role).call())

    async def total_active_stake(self, role: Role) -> int:
        return int(await self.staking.functions.totalActiveStake(role).call())

    # -- PaymentChannels -------------------------------------------------------------------------------------------

    def channel_domain(self) -> Domain:
        return Domain("PaymentChannels", "1", self.deployment.chain_id, self.channels.address)

    async def open_channel(self, receiver: str, amount: int, salt: bytes | None = None) -> bytes:
        """Opens a channel to ``receiver`` with ``amount`` (approving first when needed); returns its id."""
        await self._ensure_allowance(self.channels.address, amount)
        receipt = await self._send("PaymentChannels", "open", receiver, amount, salt or secrets.token_bytes(32))
        (opened,) = self._events("PaymentChannels", "ChannelOpened", receipt)
        return bytes(opened["args"]["channelId"])

    async def top_up(self, channel_id: bytes, amount: int) -> TxReceipt:
        await self._ensure_allowance(self.channels.address, amount)
        return await self._send("PaymentChannels", "topUp", channel_id, amount)

    def sign_voucher(self, channel_id: bytes, cumulative_amount: int) -> bytes:
        """The payer's (this account's) signature over a voucher of ``channel_id``."""
        if self.account is None:
            raise ChainError("signing a voucher needs the payer's account")
        return sign(self.account, self.channel_domain(), Voucher(channel_id, cumulative_amount))

    async def claim_vouchers(self, vouchers: Sequence[tuple[Voucher, bytes]]) -> int:
        """Claims many channels' newest vouchers in one transaction; returns the amount paid."""
        receipt = await self._send(
            "PaymentChannels",
            "claim",
            [(voucher.channel_id, voucher.cumulative_amount) for voucher, _ in vouchers],
            [signature for _, signature in vouchers],
        )
        return sum(int(event["args"]["amount"]) for event in self._events("PaymentChannels", "VoucherClaimed", receipt))

    async def initiate_channel_withdraw(self, channel_id: bytes) -> TxReceipt:
        return await self._send("PaymentChannels", "initiateWithdraw", channel_id)

    async def withdraw_channel(self, channel_id: bytes) -> int:
        """Closes the payer's channel after the delay; returns the refund."""
        receipt = await self._send("PaymentChannels", "withdraw", channel_id)
        (closed,) = self._events("PaymentChannels", "ChannelClosed", receipt)
        return int(closed["args"]["refund"])

    async def channel(self, channel_id: bytes) -> Channel:
        payer, withdrawable_at, state, receiver, deposit, claimed = await self.channels.functions.channel(
            channel_id
        ).call()
        return Channel(
            bytes(channel_id), payer, receiver, ChannelState(state), int(deposit), int(claimed), int(withdrawable_at)
        )

    # -- ReceiptRegistry -------------------------------------------------------------------------------------------

    def receipt_domain(self) -> Domain:
        """The EIP-712 domain agents sign receipts under."""
        return Domain("ReceiptRegistry", "1", self.deployment.chain_id, self.receipts.address)

    async def commit_epoch(
        self,
        epoch: int,
        receipts_root: bytes,
        receipt_count: int,
        fee_total: int,
        rewards_root: bytes,
        rewards_total: int,
    ) -> TxReceipt:
        """Commits an epoch as the agent, approving the rewards it funds first when needed."""
        await self._ensure_allowance(self.receipts.address, rewards_total)
        return await self._send(
            "ReceiptRegistry",
            "commitEpoch",
            epoch,
            receipts_root,
            receipt_count,
            fee_total,
            rewards_root,
            rewards_total,
        )

    async def claim_reward(
        self, agent: str, epoch: int, contributor: str, amount: int, proof: Sequence[bytes]
    ) -> TxReceipt:
        return await self._send("ReceiptRegistry", "claimReward", agent, epoch, contributor, amount, list(proof))

    async def claim_rewards(self, contributor: str, claims: Sequence[tuple[str, int, int, Sequence[bytes]]]) -> int:
        """Claims ``(agent, epoch, amount, proof)`` rewards of ``contributor`` in one transfer; returns the total."""
        receipt = await self._send(
            "ReceiptRegistry", "claimRewards", contributor, [(a, e, amt, list(p)) for a, e, amt, p in claims]
        )
        return sum(int(event["args"]["amount"]) for event in self._events("ReceiptRegistry", "RewardClaimed", receipt))

    async def epoch(self, agent: str, epoch: int) -> EpochCommitment:
        commitment, (status, _deadline) = await asyncio.gather(
            self.receipts.functions.epochCommitment(agent, epoch).call(),
            self.receipts.functions.epochStatus(agent, epoch).call(),
        )
        receipts_root, rewards_root, count, committed_at, deadline, fees, rewards, claimed = commitment
        return EpochCommitment(
            agent=agent,
            epoch=epoch,
            status=EpochStatus(status),
            receipts_root=bytes(receipts_root),
            rewards_root=bytes(rewards_root),
            receipt_count=int(count),
            committed_at=int(committed_at),
            challenge_deadline=int(deadline),
            fee_total=int(fees),
            rewards_total=int(rewards),
            rewards_claimed=int(claimed),
        )

    async def latest_epoch(self, agent: str) -> int:
        return int(await self.receipts.functions.latestEpoch(agent).call())

    # -- DisputeManager --------------------------------------------------------------------------------------------

    async def prove_equivocation(self, first: Receipt, first_sig: bytes, second: Receipt, second_sig: bytes) -> int:
        """Proves two different receipts signed for one request; the agent is slashed at once. Returns the id."""
        receipt = await self._send(
            "DisputeManager", "proveEquivocation", first.as_tuple(), first_sig, second.as_tuple(), second_sig
        )
        (proven,) = self._events("DisputeManager", "EquivocationProven", receipt)
        return int(proven["args"]["disputeId"])

    async def challenge_inclusion(self, receipt: Receipt, signature: bytes) -> int:
        """Demands the agent prove ``receipt`` is in its committed epoch (posting the inclusion bond)."""
        await self._ensure_allowance(self.disputes.address, self.deployment.parameters.disputes.inclusion_bond)
        tx = await self._send("DisputeManager", "challengeInclusion", receipt.as_tuple(), signature)
        return self._opened_dispute(tx)

    async def prove_inclusion(self, dispute_id: int, proof: Sequence[bytes]) -> TxReceipt:
        return await self._send("DisputeManager", "proveInclusion", dispute_id, list(proof))

    async def challenge(self, receipt: Receipt, signature: bytes, kind: DisputeKind, evidence_hash: bytes) -> int:
        """Opens a bonded challenge that validators vote on (posting the challenge bond)."""
        await self._ensure_allowance(self.disputes.address, self.deployment.parameters.disputes.challenge_bond)
        tx = await self._send("DisputeManager", "challenge", receipt.as_tuple(), signature, kind, evidence_hash)
        return self._opened_dispute(tx)

    def _opened_dispute(self, receipt: TxReceipt) -> int:
        (opened,) = self._events("DisputeManager", "DisputeOpened", receipt)
        return int(opened["args"]["disputeId"])

    async def vote(self, dispute_id: int, uphold: bool) -> TxReceipt:
        return await self._send("DisputeManager", "vote", dispute_id, uphold)

    async def resolve(self, dispute_id: int) -> DisputeState:
        receipt = await self._send("DisputeManager", "resolve", dispute_id)
        (resolved,) = self._events("DisputeManager", "DisputeResolved", receipt)
        return DisputeState(resolved["args"]["state"])

    async def dispute(self, dispute_id: int) -> Dispute:
        fields = await self.disputes.functions.dispute(dispute_id).call()
        agent, kind, state, epoch, challenger, deadline, snapshot, receipt_hash, payer, refund, bond, seq, up, down = (
            fields
        )
        return Dispute(
            dispute_id=dispute_id,
            agent=agent,
            kind=DisputeKind(kind),
            state=DisputeState(state),
            epoch=int(epoch),
            challenger=challenger,
            deadline=int(deadline),
            snapshot_block=int(snapshot),
            receipt_hash=bytes(receipt_hash),
            payer=payer,
            refund=int(refund),
            bond=int(bond),
            seq=int(seq),
            uphold_weight=int(up),
            reject_weight=int(down),
        )

    async def dispute_count(self) -> int:
        return int(await self.disputes.functions.disputeCount().call())

    # -- DatanetRegistry -------------------------------------------------------------------------------------------

    async def create_datanet(self, metadata_uri: str) -> int:
        receipt = await self._send("DatanetRegistry", "createDatanet", metadata_uri)
        (created,) = self._events("DatanetRegistry", "DatanetCreated", receipt)
        return int(created["args"]["datanetId"])

    async def add_contributions(
        self, datanet_id: int, content_hashes: Sequence[bytes], contributors: Sequence[str]
    ) -> TxReceipt:
        return await self._send(
            "DatanetRegistry", "addContributions", datanet_id, list(content_hashes), list(contributors)
        )

    async def register_model(
        self, model_id: bytes, datanet_ids: Sequence[int], index_root: bytes, metadata_uri: str
    ) -> TxReceipt:
        return await self._send(
            "DatanetRegistry", "registerModel", model_id, sorted(datanet_ids), index_root, metadata_uri
        )

    async def datanet(self, datanet_id: int) -> Datanet:
        owner, created_at, count, uri = await self.datanets.functions.datanet(datanet_id).call()
        return Datanet(datanet_id, owner, int(created_at), int(count), uri)

    async def contribution(self, datanet_id: int, index: int) -> Contribution:
        content_hash, contributor, added_at = await self.datanets.functions.contribution(datanet_id, index).call()
        return Contribution(bytes(content_hash), contributor, int(added_at))

    async def model(self, model_id: bytes) -> Model:
        owner, registered_at, index_root, datanet_ids, uri = await self.datanets.functions.model(model_id).call()
        return Model(bytes(model_id), owner, int(registered_at), bytes(index_root), tuple(datanet_ids), uri)
