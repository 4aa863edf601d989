"""Card routes: read and verify the chip on a reader (ICAO 9303: PACE/BAC, passive, active and
chip authentication, the Vietnamese ID cross-check)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from ..errors import DeviceStateError
from ..hal import CardReader

router = APIRouter(prefix="/v1", tags=["cards"])


class CardReadRequest(BaseModel):
    can: str | None = Field(None, pattern=r"^[0-9]{6}$", description="Card access number (CCCD: 6 digits).")
    mrz: str | None = Field(None, max_length=200, description="The MRZ lines, or DOCNO/YYMMDD/YYMMDD.")
    data_groups: list[int] | None = Field(None, description="Data groups to read (default: all in EF.COM).")

    @model_validator(mode="after")
    def _one_secret(self) -> "CardReadRequest":
        if bool(self.can) == bool(self.mrz):
            raise ValueError("give exactly one of can and mrz")
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
