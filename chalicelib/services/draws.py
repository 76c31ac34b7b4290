"""Draw use cases: staff announce a draw among member classes and close it (the eligible list
and the seed are fixed, their commitments published); an admin runs it at or after its time;
anyone given the revealed seed and list can rerun it (`domain.draws`). Patients see the draws
they are in, the commitments and whether they won, never the other members."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets

from chalicelib import clock
from chalicelib.domain import draws as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, parse_timestamp
from chalicelib.domain.draws import Draw, DrawStatus
from chalicelib.domain.errors import Conflict, NotFound, invalid
from chalicelib.observability import count
from chalicelib.services.patients import parse_limit
from chalicelib.services.segments import SegmentService
from chalicelib.services.tenants import TenantService
from chalicelib.store.draws import DrawPosition, DrawRepository, StoredDraw

SEGMENT_PAGE = 200
ADMIN_ONLY = frozenset({Role.ADMIN})
LISTING_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z#d-[0-9a-f]{16}")


def new_draw_id() -> str:
    return "d-" + secrets.token_hex(8)


def encode_cursor(position: DrawPosition) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> DrawPosition:
    not_ours = invalid("cursor", "is not a cursor this API returned")
    try:
        sort_key, draw_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise not_ours from exc
    if not (
        isinstance(sort_key, str)
        and isinstance(draw_id, str)
        and LISTING_KEY.fullmatch(sort_key)
        and sort_key.endswith(f"#{draw_id}")
    ):
        raise not_ours
    return sort_key, draw_id


class DrawService:
    def __init__(
        self, repository: DrawRepository, segments: SegmentService, tenants: TenantService
    ) -> None:
        self._draws = repository
        self._segments = segments
        self._tenants = tenants

    # -- staff ------------------------------------------------------------------------------

    def create(self, principal: Principal, body: Document) -> Document:
        """Announce a draw (`open`): who takes part is fixed when it is closed."""
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        now = clock.now()
        draw_at = parse_timestamp("$.draw_at", body["draw_at"])
        rules.check_new_draw(body, now, draw_at)
        draw = Draw(
            id=new_draw_id(),
            name=body["name"],
            member_classes=list(body["member_classes"]),
            winners=body["winners"],
            draw_at=clock.iso(draw_at),
            status=DrawStatus.OPEN,
            created_at=clock.iso(now),
            created_by=principal.subject,
        )
        stored = self._draws.create(tenant["id"], draw)
        count("DrawCreated")
        return self._shown(tenant["id"], stored)

    def get(self, principal: Principal, draw_id: str) -> Document:
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        return self._shown(tenant_id, self._require(tenant_id, draw_id))

    def listing(
        self, principal: Principal, *, limit: str | None, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        found, position = self._draws.page(
            tenant_id, parse_limit(limit), decode_cursor(cursor) if cursor else None
        )
        items = [rules.public_view(d.doc) | {"version": d.version} for d in found]
        return items, encode_cursor(position) if position else None

    def close(self, principal: Principal, draw_id: str) -> Document:
        """Fix the eligible list (the members of the draw's classes now, each class's segment
        paged by Query) and a fresh seed, and publish their commitments. Closing a committed
        draw again answers it as it is."""
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        stored = self._require(tenant["id"], draw_id)
        if stored.doc["status"] == DrawStatus.COMMITTED:
            return self._shown(tenant["id"], stored)
        rules.check_transition(DrawStatus(stored.doc["status"]), DrawStatus.COMMITTED)
        now = clock.now()
        if clock.iso(now) >= stored.doc["draw_at"]:
            raise Conflict(
                "the draw's time has passed: its list can no longer be committed before it",
                code="draw_at_passed",
            )
        eligible = self._eligible(tenant, stored.doc)
        seed = secrets.token_hex(32)
        list_ref, chunks = self._draws.save_list(tenant["id"], draw_id, eligible)
        committed = Draw(
            **{
                **stored.doc,
                **rules.commitment(seed, eligible),
                "status": DrawStatus.COMMITTED,
                "committed_at": clock.iso(now),
            }
        )
        try:
            saved = self._draws.replace(
                tenant["id"], stored, committed, seed=seed, list_ref=list_ref, chunks=chunks
            )
        except Conflict:
            # Another close (or a cancel) got there first: answer the draw as it now is.
            again = self._require(tenant["id"], draw_id)
            if again.doc["status"] != DrawStatus.COMMITTED:
                raise
            return self._shown(tenant["id"], again)
        count("DrawCommitted")
        return self._shown(tenant["id"], saved)

    def run(self, principal: Principal, draw_id: str) -> Document:
        """Pick the winners from the committed seed and list. A draw runs once: running it
        again answers the stored result (which a rerun could only confirm)."""
        require_role(principal, ADMIN_ONLY)
        tenant_id = tenant_of(principal)
        stored = self._require(tenant_id, draw_id)
        status = DrawStatus(stored.doc["status"])
        if status is DrawStatus.DRAWN:
            return self._shown(tenant_id, stored)
        if status is DrawStatus.OPEN:
            raise Conflict(
                "close the draw first: its list and seed must be committed before it runs",
                code="draw_not_committed",
            )
        rules.check_transition(status, DrawStatus.DRAWN)
        now = clock.now()
        if clock.iso(now) < stored.doc["draw_at"]:
            raise Conflict(
                f"the draw runs at or after {stored.doc['draw_at']}", code="draw_not_due"
            )
        if stored.seed is None:
            raise RuntimeError(f"draw {draw_id} is committed without a seed")
        eligible = self._draws.eligible(tenant_id, stored)
        drawn = Draw(
            **{
                **stored.doc,
                "status": DrawStatus.DRAWN,
                "drawn_at": clock.iso(now),
                "winner_ids": rules.pick_winners(stored.seed, eligible, stored.doc["winners"]),
            }
        )
        try:
            saved = self._draws.replace(tenant_id, stored, drawn)
        except Conflict:
            again = self._require(tenant_id, draw_id)
            if again.doc["status"] != DrawStatus.DRAWN:
                raise
            return self._shown(tenant_id, again)
        count("DrawRun")
        return self._shown(tenant_id, saved)

    def cancel(self, principal: Principal, draw_id: str) -> Document:
        require_role(principal, ADMIN_ONLY)
        tenant_id = tenant_of(principal)
        stored = self._require(tenant_id, draw_id)
        rules.check_transition(DrawStatus(stored.doc["status"]), DrawStatus.CANCELLED)
        cancelled = Draw(
            **{
                **stored.doc,
                "status": DrawStatus.CANCELLED,
                "cancelled_at": clock.iso(clock.now()),
            }
        )
        return self._shown(tenant_id, self._draws.replace(tenant_id, stored, cancelled))

    def verification(self, principal: Principal, draw_id: str) -> Document:
        """Everything needed to check a draw that has run and to rerun it."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        stored = self._require(tenant_id, draw_id)
        if stored.doc["status"] != DrawStatus.DRAWN or stored.seed is None:
            raise Conflict(
                "the seed and the list are revealed once the draw has run",
                code="draw_not_drawn",
            )
        doc = stored.doc
        eligible = self._draws.eligible(tenant_id, stored)
        return {
            "draw_id": doc["id"],
            "algorithm": rules.ALGORITHM,
            "method": list(rules.VERIFICATION_STEPS),
            "winners": doc["winners"],
            "seed": stored.seed,
            "seed_commitment": doc["seed_commitment"],
            "eligible": eligible,
            "eligible_commitment": doc["eligible_commitment"],
            "eligible_count": doc["eligible_count"],
            "winner_ids": list(doc.get("winner_ids", [])),
            "committed_at": doc["committed_at"],
            "drawn_at": doc["drawn_at"],
        }

    # -- patients ---------------------------------------------------------------------------

    def mine(self, principal: Principal) -> list[Document]:
        """The draws the patient's own id is in: commitments, and after the run whether they
        won (and the seed, which names nobody)."""
        require_role(principal, {Role.PATIENT})
        tenant_id = tenant_of(principal)
        patient_id = principal.patient_id or ""
        shown = []
        for stored in self._draws.entered(tenant_id, patient_id):
            view = rules.patient_view(stored.doc, patient_id)
            if stored.doc["status"] == DrawStatus.DRAWN and stored.seed is not None:
                view["seed"] = stored.seed
            shown.append(view)
        return shown

    # -- helpers ----------------------------------------------------------------------------

    def _require(self, tenant_id: str, draw_id: str) -> StoredDraw:
        if not is_valid_id(draw_id):
            raise NotFound("draw not found")
        stored = self._draws.get(tenant_id, draw_id)
        if stored is None:
            raise NotFound("draw not found")
        return stored

    def _eligible(self, tenant: Document, draw: Draw) -> list[str]:
        """The members of the draw's classes now, sorted, each once (Query pages, no Scan)."""
        found: set[str] = set()
        for segment in rules.segments_of(draw):
            self._segments.check(tenant, segment)
            after: str | None = None
            while True:
                ids, after = self._segments.page(tenant, segment, SEGMENT_PAGE, after)
                found.update(ids)
                if after is None:
                    break
        return sorted(found)

    def _shown(self, tenant_id: str, stored: StoredDraw) -> Document:
        reveal = None
        if stored.doc["status"] == DrawStatus.DRAWN and stored.seed is not None:
            reveal = {"seed": stored.seed, "eligible": self._draws.eligible(tenant_id, stored)}
        return rules.public_view(stored.doc, reveal=reveal) | {"version": stored.version}
