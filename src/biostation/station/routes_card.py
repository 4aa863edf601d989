"""Card routes: read and verify the chip on a reader (ICAO 9303: PACE/BAC, passive, active and
chip authentication, the Vietnamese ID cross-check)."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from ..card.mrz import key_from_text
from ..card.reader import read_document
from ..card.trust import TrustStore
from ..errors import DeviceBusyError, DeviceStateError
from ..hal import CardReader

router = APIRouter(prefix="/v1", tags=["cards"])
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class CardReadRequest(BaseModel):
    can: str | None = Field(None, pattern=r"^[0-9]{6}$", description="Card access number (CCCD: 6 digits).")
    mrz: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9<,/;\s]*$",
                            description="The MRZ lines (TD1, TD3), or DOCNO/YYMMDD/YYMMDD.")
    data_groups: list[Annotated[int, Field(ge=1, le=16)]] | None = Field(
        None, max_length=16, description="Data groups to read, 1..16 (default: all in EF.COM).")

    @field_validator("mrz")
    @classmethod
    def _mrz_readable(cls, v: str | None) -> str | None:
        if v:
            key_from_text(v)  # MRZError (a ValueError): 422 with the reason, before the card is touched
        return v

    @model_validator(mode="after")
    def _one_secret(self) -> CardReadRequest:
        if bool(self.can) == bool(self.mrz):
            raise ValueError("give exactly one of can and mrz")
        if self.data_groups is not None and len(set(self.data_groups)) != len(self.data_groups):
            raise ValueError("data_groups lists a data group twice")
        return self


def _trust(request: Request, reader: CardReader) -> tuple[TrustStore, list[str]]:
    folder: Path = request.app.state.settings.trust_dir
    trust = TrustStore.load(folder) if folder.is_dir() else TrustStore()
    sources = [str(folder)] if folder.is_dir() else []
    anchor = getattr(reader, "trust_anchor", None)
    path = anchor() if anchor is not None else None
    if path is not None:  # the simulated card's own test CSCA, for simulated readers only
        trust.add_file(path)
        sources.append("simulated card's test CSCA")
    return trust, sources


@router.post("/devices/{device_id}/card/read", summary="Read and verify the chip on a reader",
             description="Opens the chip with PACE (or BAC) using the CAN or the MRZ, reads the data groups, "
                         "and runs passive, active and chip authentication and the Vietnamese ID cross-check. "
                         "403: wrong CAN/MRZ; 409: no card, card removed mid-read, or a read already running.",
             responses={403: {"description": "Access denied by the chip"}, 409: {"description": "No card / busy"}})
def read_card(device_id: str, body: CardReadRequest, request: Request) -> dict[str, Any]:
    dev = request.app.state.registry.get(device_id)
    if not isinstance(dev, CardReader):
        raise DeviceStateError(f"{device_id} is a {dev.device_class.value}, not a card reader", device_id)
    with _locks_guard:
        lock = _locks.setdefault(device_id, threading.Lock())
    if not lock.acquire(blocking=False):  # one secure-messaging session per chip at a time
        raise DeviceBusyError(f"a card read is already running on {device_id}", device_id)
    try:
        trust, sources = _trust(request, dev)
        dev.power_on()
        try:
            result = read_document(dev, can=body.can, mrz=body.mrz, trust=trust, data_groups=body.data_groups)
        finally:
            if dev.powered:
                dev.power_off()
    finally:
        lock.release()
    out = result.summary()
    out["trust_store"] = sources
    dg2 = result.decoded.get("DG2")
    out["faces"] = [{"format": f.extension, "image_base64": base64.b64encode(f.image).decode()}
                    for f in (dg2.faces if dg2 is not None else [])]
    return out
