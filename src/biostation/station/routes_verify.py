"""Verification routes: a citizen against their chip card (:mod:`.workflows.verification`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from ..errors import DeviceStateError
from ..hal import Camera, CardReader, FingerprintScanner
from .routes_card import CardReadRequest

router = APIRouter(prefix="/v1", tags=["verification"])


class VerifyRequest(CardReadRequest):
    reader_id: str = Field(max_length=128, description="The card reader holding the citizen's card.")
    camera_id: str | None = Field(None, max_length=128, description="Camera for the live portrait.")
    scanner_id: str | None = Field(None, max_length=128, description="Scanner for the live fingers (DG3).")
    operator: str = Field("desk", min_length=1, max_length=64, pattern=r"^[\w .@-]+$")


def _device(request: Request, device_id: str | None, cls: type, what: str) -> Any:
    if device_id is None:
        return None
    dev = request.app.state.registry.get(device_id)
    if not isinstance(dev, cls):
        raise DeviceStateError(f"{device_id} is a {dev.device_class.value}, not a {what}", device_id)
    return dev


@router.post("/verifications", summary="Verify a citizen against their chip card (face and fingers)",
             description="Reads the chip with PACE, passive and chip authentication and terminal authentication "
                         "(DG3), captures the live portrait and the DG3 fingers, and decides at the station's "
                         "operating points: verified, not_verified or retake, with every score, threshold and "
                         "reason. The decision is recorded in the store and the audit trail. 403: wrong CAN/MRZ.",
             responses={403: {"description": "Access denied by the chip"}, 409: {"description": "No card / busy"}})
def verify(body: VerifyRequest, request: Request) -> dict[str, Any]:
    reader = _device(request, body.reader_id, CardReader, "card reader")
    camera = _device(request, body.camera_id, Camera, "camera")
    scanner = _device(request, body.scanner_id, FingerprintScanner, "fingerprint scanner")
    out = request.app.state.verifications.verify(reader, can=body.can, mrz=body.mrz, camera=camera,
                                                  scanner=scanner, operator=body.operator)
    sender = request.app.state.outbox
    if sender is not None:
        sender.wake()
    return out.to_dict()
