"""Card routes: read and verify the chip on a reader (ICAO 9303: PACE/BAC, passive, active and
chip authentication, the Vietnamese ID cross-check)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from ..card.mrz import key_from_text
from ..errors import DeviceStateError
from ..hal import CardReader

router = APIRouter(prefix="/v1", tags=["cards"])


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


@router.post("/devices/{device_id}/card/read", summary="Read and verify the chip on a reader",
             description="Opens the chip with PACE (or BAC) using the CAN or the MRZ, reads the data groups, "
                         "and runs passive, active and chip authentication and the Vietnamese ID cross-check. "
                         "403: wrong CAN/MRZ; 409: no card, card removed mid-read, or a read already running.",
             responses={403: {"description": "Access denied by the chip"}, 409: {"description": "No card / busy"}})
def read_card(device_id: str, body: CardReadRequest, request: Request) -> dict[str, Any]:
    dev = request.app.state.registry.get(device_id)
    if not isinstance(dev, CardReader):
        raise DeviceStateError(f"{device_id} is a {dev.device_class.value}, not a card reader", device_id)
    read = request.app.state.chip_reads.read(dev, can=body.can, mrz=body.mrz, data_groups=body.data_groups)
    result = read.result
    out = result.summary()
    out["trust_store"] = read.trust_sources
    dg2 = result.decoded.get("DG2")
    out["faces"] = [{"format": f.extension, "image_base64": base64.b64encode(f.image).decode()}
                    for f in (dg2.faces if dg2 is not None else [])]
    return out
