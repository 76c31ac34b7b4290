"""Loyalty: a tenant's published rules, each patient's ledger and account, the rewards
catalogue and its vouchers. See README.md (rows 80-88).

Every ledger entry is created once (`attribute_not_exists`, keyed by its cause) in one
transaction with the totals it moves, so a replayed event changes nothing and the account always
equals its entries. A debit carries the condition `balance >= points`: concurrent redemptions
never take a balance below zero, and a reward's stock never below zero (`stock >= 1`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.domain.loyalty import (
    Account,
    EntryKind,
    LedgerEntry,
    LoyaltyRules,
    Reward,
    Voucher,
    VoucherStatus,
    insufficient_points,
    out_of_stock,
)
from chalicelib.settings import get_settings
from chalicelib.store.errors import version_conflict
from chalicelib.store.keys import config_pk, patient_pk
from chalicelib.store.models import ConfigItem, LedgerItem, RewardItem, VoucherItem, bind_models
from chalicelib.store.records import (
    as_document,
    failed_items,
    is_condition_failure,
    plain,
    raced,
    stored_body,
    transaction_write,
)

ACCOUNT_SK = "LEDGER"
ENTRY_PREFIX = "LEDGER#E#"
CAP_PREFIX = "LEDGER#CAP#"
RULES_SK = "LOYALTYRULES#current"
VOUCHER_SK = "VOUCHER"


def _rules_version_sk(version: int) -> str:
    return f"LOYALTYRULES#v{version:06d}"


def _reward_sk(reward_id: str) -> str:
    return f"REWARD#{reward_id}"


def voucher_pk(tenant_id: str, code: str) -> str:
    return f"T#{tenant_id}#VOUCHER#{code}"


def expiry_listing_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#POINTSEXPIRY"


def vouchers_of_pk(tenant_id: str, patient_id: str) -> str:
    return f"{patient_pk(tenant_id, patient_id)}#VOUCHERS"


@dataclass
class Ledger:
    """A patient's ledger as one Query reads it."""

    account: Account
    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)  # period → points earned in it


class Raced(Exception):
    """Another transaction touched the same items at the same moment: read again and retry."""


class LedgerRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    # --- rules ---

    def rules(self, tenant_id: str, version: int | None = None) -> LoyaltyRules | None:
        sk = RULES_SK if version is None else _rules_version_sk(version)
        try:
            item = ConfigItem.get(config_pk(tenant_id), sk, consistent_read=True)
        except DoesNotExist:
            return None
        return as_document(item.doc)  # type: ignore[return-value]

    def publish_rules(self, tenant_id: str, rules: LoyaltyRules) -> None:
        """The new version, and its copy kept for ever (entries name the version they were
        earned under), in one transaction; a version published meanwhile is a conflict."""
        pk = config_pk(tenant_id)
        doc = plain(dict(rules))  # with its `version`: the publication's number
        current = ConfigItem(pk, RULES_SK, entity="loyalty_rules", doc=doc)
        if rules["version"] > 1:  # else: the first, created only if absent
            current.version = rules["version"] - 1
        kept = ConfigItem(
            pk,
            _rules_version_sk(rules["version"]),
            entity="loyalty_rules_version",
            doc=doc,
        )
        try:
            with transaction_write() as tx:
                tx.save(current)
                tx.save(kept, condition=ConfigItem.pk.does_not_exist())
        except TransactWriteError as exc:
            if failed_items(exc) or raced(exc):
                raise version_conflict() from exc
            raise

    # --- the ledger ---

    def ledger(self, tenant_id: str, patient_id: str) -> Ledger:
        ledger = Ledger(account=Account(balance=0, pending=0, debited=0))
        for item in LedgerItem.query(
            patient_pk(tenant_id, patient_id),
            LedgerItem.sk.startswith(ACCOUNT_SK),
            consistent_read=True,
        ):
            if item.sk == ACCOUNT_SK:
                ledger.account = Account(
                    balance=int(item.balance or 0),
                    pending=int(item.pending or 0),
                    debited=int(item.debited or 0),
                )
            elif item.sk.startswith(ENTRY_PREFIX):
                entry: LedgerEntry = as_document(item.doc)  # type: ignore[assignment]
                ledger.entries[entry["id"]] = entry
            elif item.sk.startswith(CAP_PREFIX):
                ledger.caps[item.sk.removeprefix(CAP_PREFIX)] = int(item.earned or 0)
        return ledger

    def entry(self, tenant_id: str, patient_id: str, cause: str) -> LedgerEntry | None:
        try:
            item = LedgerItem.get(
                patient_pk(tenant_id, patient_id), ENTRY_PREFIX + cause, consistent_read=True
            )
        except DoesNotExist:
            return None
        return as_document(item.doc)  # type: ignore[return-value]

    def _entry_item(self, tenant_id: str, patient_id: str, entry: LedgerEntry) -> LedgerItem:
        item = LedgerItem(
            patient_pk(tenant_id, patient_id),
            ENTRY_PREFIX + entry["id"],
            entity="ledger_entry",
            doc=stored_body(dict(entry)),
        )
        if "expires_at" in entry:  # a credit: the expiry sweep finds it on its day
            item.gsi2pk = expiry_listing_pk(tenant_id)
            item.gsi2sk = f"{entry['expires_at']}#{patient_id}#{entry['id']}"
        return item

    def expiring_between(self, tenant_id: str, since: str, until: str) -> set[str]:
        """Patients with credits expiring in [since, until] (the daily sweep)."""
        return {
            item.gsi2sk.split("#")[1]
            for item in LedgerItem.by_expiry.query(
                expiry_listing_pk(tenant_id),
                LedgerItem.gsi2sk.between(since, until + "~"),
                attributes_to_get=["GSI2SK"],
            )
            if item.gsi2sk
        }

    def _account(self, tenant_id: str, patient_id: str) -> LedgerItem:
        return LedgerItem(patient_pk(tenant_id, patient_id), ACCOUNT_SK)

    def _cap(self, tenant_id: str, patient_id: str, period: str) -> LedgerItem:
        return LedgerItem(patient_pk(tenant_id, patient_id), CAP_PREFIX + period)

    def earn(
        self, tenant_id: str, patient_id: str, entry: LedgerEntry, limits: Mapping[str, int]
    ) -> bool:
        """Write an earn with the totals and cap counters it moves. False if its cause earned
        already. Raises CapReached when a cap filled meanwhile (read again and recompute)."""
        points = entry["points"]
        pending = entry.get("status") == "pending"
        try:
            with transaction_write() as tx:
                tx.save(
                    self._entry_item(tenant_id, patient_id, entry),
                    condition=LedgerItem.pk.does_not_exist(),
                )
                tx.update(
                    self._account(tenant_id, patient_id),
                    actions=[
                        (LedgerItem.pending if pending else LedgerItem.balance).add(points),
                        LedgerItem.entity.set("ledger_account"),
                    ],
                )
                for period in entry.get("cap_periods", []) if points else []:
                    limit = limits.get(period)
                    tx.update(
                        self._cap(tenant_id, patient_id, period),
                        actions=[
                            LedgerItem.earned.add(points),
                            LedgerItem.entity.set("ledger_cap"),
                        ],
                        condition=None
                        if limit is None
                        else (
                            LedgerItem.earned.does_not_exist()
                            | (LedgerItem.earned <= limit - points)
                        ),
                    )
        except TransactWriteError as exc:
            failed = failed_items(exc)
            if 0 in failed:
                return False
            if failed:
                raise CapReached() from exc
            if raced(exc):
                raise Raced() from exc
            raise
        return True

    def settle(
        self, tenant_id: str, patient_id: str, earned: LedgerEntry, settlement: LedgerEntry
    ) -> bool:
        """Confirm or reverse a pending earn (its settlement entry is created once: a visit is
        never both). A reversal gives back what the earn counted toward the caps."""
        points = earned["points"]
        confirm = settlement["kind"] == EntryKind.CONFIRM
        moves = [LedgerItem.pending.add(-points), LedgerItem.entity.set("ledger_account")]
        if confirm:
            moves.append(LedgerItem.balance.add(points))
        try:
            with transaction_write() as tx:
                tx.save(
                    self._entry_item(tenant_id, patient_id, settlement),
                    condition=LedgerItem.pk.does_not_exist(),
                )
                tx.update(self._account(tenant_id, patient_id), actions=moves)
                for period in [] if confirm or not points else earned.get("cap_periods", []):
                    tx.update(
                        self._cap(tenant_id, patient_id, period),
                        actions=[LedgerItem.earned.add(-points)],
                    )
        except TransactWriteError as exc:
            if 0 in failed_items(exc):
                return False
            if raced(exc):
                raise Raced() from exc
            raise
        return True

    def credit(self, tenant_id: str, patient_id: str, entry: LedgerEntry) -> bool:
        """A plus adjustment (an earn of no event, counting toward no cap); False if its id was
        used already."""
        return self.earn(tenant_id, patient_id, entry, {})

    def debit(
        self,
        tenant_id: str,
        patient_id: str,
        entry: LedgerEntry,
        *,
        debited_was: int | None = None,
        reward_id: str | None = None,
        voucher: Voucher | None = None,
    ) -> bool:
        """Take points: a redemption (with its reward's stock and its voucher), an expiry (only
        if no other debit came since it was computed: `debited_was`), a minus adjustment.
        False if the entry exists already; raises InsufficientPoints / OutOfStock / Raced."""
        points = entry["points"]
        condition = LedgerItem.balance >= points
        if debited_was is not None:
            unchanged = LedgerItem.debited == debited_was
            if debited_was == 0:
                unchanged |= LedgerItem.debited.does_not_exist()
            condition &= unchanged
        try:
            with transaction_write() as tx:
                tx.save(
                    self._entry_item(tenant_id, patient_id, entry),
                    condition=LedgerItem.pk.does_not_exist(),
                )
                if voucher is not None:
                    tx.save(
                        VoucherItem(
                            voucher_pk(tenant_id, voucher["code"]),
                            VOUCHER_SK,
                            entity="voucher",
                            doc=stored_body(dict(voucher)),
                            status=voucher["status"],
                            gsi1pk=vouchers_of_pk(tenant_id, patient_id),
                            gsi1sk=f"{voucher['issued_at']}#{voucher['code']}",
                        ),
                        condition=VoucherItem.pk.does_not_exist(),
                    )
                tx.update(
                    self._account(tenant_id, patient_id),
                    actions=[LedgerItem.balance.add(-points), LedgerItem.debited.add(points)],
                    condition=condition,
                )
                if reward_id is not None:
                    tx.update(
                        RewardItem(config_pk(tenant_id), _reward_sk(reward_id)),
                        actions=[RewardItem.stock.add(-1)],
                        condition=RewardItem.stock >= 1,
                    )
        except TransactWriteError as exc:
            failed = failed_items(exc)
            puts = 2 if voucher is not None else 1
            if any(index < puts for index in failed):
                return False
            if puts in failed:
                raise insufficient_points() from exc
            if failed:
                raise out_of_stock() from exc
            if raced(exc):
                raise Raced() from exc
            raise
        return True

    # --- rewards ---

    def rewards(self, tenant_id: str) -> list[Reward]:
        return [
            _reward(item)
            for item in RewardItem.query(config_pk(tenant_id), RewardItem.sk.startswith("REWARD#"))
        ]

    def reward(self, tenant_id: str, reward_id: str) -> Reward | None:
        try:
            item = RewardItem.get(config_pk(tenant_id), _reward_sk(reward_id), consistent_read=True)
        except DoesNotExist:
            return None
        return _reward(item)

    def put_reward(self, tenant_id: str, reward: Reward, expected_updated_at: str | None) -> None:
        """The reward's definition (its stock moves only by `restock` and redemptions). Created
        if `expected_updated_at` is None, else replaced only if unchanged since it was read."""
        doc = stored_body({k: v for k, v in reward.items() if k != "stock"})
        item = RewardItem(config_pk(tenant_id), _reward_sk(reward["id"]))
        actions: list[Any] = [RewardItem.doc.set(doc), RewardItem.entity.set("reward")]
        if expected_updated_at is None:
            actions.append(RewardItem.stock.set(0))
            condition = RewardItem.pk.does_not_exist()
        else:
            condition = RewardItem.doc["updated_at"] == expected_updated_at
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if is_condition_failure(exc):
                raise version_conflict() from exc
            raise

    def restock(self, tenant_id: str, reward_id: str, quantity: int) -> int:
        """Add to (or, negative, take from) a reward's stock, never below zero; the new stock."""
        item = RewardItem(config_pk(tenant_id), _reward_sk(reward_id))
        condition = RewardItem.pk.exists()
        if quantity < 0:
            condition &= RewardItem.stock >= -quantity
        try:
            item.update(actions=[RewardItem.stock.add(quantity)], condition=condition)
        except UpdateError as exc:
            if is_condition_failure(exc):
                raise out_of_stock() from exc
            raise
        return int(item.stock or 0)

    # --- vouchers ---

    def voucher(self, tenant_id: str, code: str) -> Voucher | None:
        try:
            item = VoucherItem.get(voucher_pk(tenant_id, code), VOUCHER_SK, consistent_read=True)
        except DoesNotExist:
            return None
        return {**as_document(item.doc), "status": item.status}  # type: ignore[return-value]

    def vouchers_of(self, tenant_id: str, patient_id: str) -> Iterator[Voucher]:
        for item in VoucherItem.by_patient.query(vouchers_of_pk(tenant_id, patient_id)):
            voucher: Voucher = {**as_document(item.doc), "status": item.status}  # type: ignore[typeddict-item]
            yield voucher

    def use_voucher(self, tenant_id: str, code: str, *, by: str, at: str, valid_after: str) -> bool:
        """Mark an issued, unexpired voucher used, once; False if it was not."""
        item = VoucherItem(voucher_pk(tenant_id, code), VOUCHER_SK)
        try:
            item.update(
                actions=[
                    VoucherItem.status.set(VoucherStatus.USED.value),
                    VoucherItem.doc["used_at"].set(at),
                    VoucherItem.doc["used_by"].set(by),
                ],
                condition=(VoucherItem.status == VoucherStatus.ISSUED.value)
                & (VoucherItem.doc["expires_at"] > valid_after),
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True


def _reward(item: RewardItem) -> Reward:
    reward: Reward = as_document(item.doc)  # type: ignore[assignment]
    reward["stock"] = int(item.stock or 0)
    return reward


class CapReached(Exception):
    """A cap counter filled between the read and the write."""
