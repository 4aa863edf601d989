"""Device routes: list and status, capture, camera frames, and the event stream (SSE)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import cv2
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from ..errors import BiostationError, DeviceProtocolError, DeviceStateError
from ..hal import Camera, DeviceInfo, DriverRegistry, Event, Feature, FingerprintScanner
from ..records import FingerPosition, ImpressionKind
from .workflows import capture_assessed

router = APIRouter(prefix="/v1", tags=["devices"])


def _registry(request: Request) -> DriverRegistry:
    return request.app.state.registry


class CaptureRequest(BaseModel):
    kind: ImpressionKind = ImpressionKind.FLAT
    position: FingerPosition = FingerPosition.UNKNOWN
    timeout_s: float = Field(15.0, gt=0, le=120, description="Give up after this many seconds.")
    assess: bool = Field(True, description="Also compute the NFIQ 2 quality score (flat and rolled prints).")


class CaptureOut(BaseModel):
    device_id: str
    kind: str
    position: int
    width: int
    height: int
    dpi: int
    duration_s: float
    image_png: str = Field(description="The impression, 8-bit grey PNG, base64.")
    nfiq2: int | None = Field(None, description="NFIQ 2 score 0..100 (ISO/IEC 29794-4), when assessed.")
    quality_note: str = Field("", description="Why the score is 0 or absent, when it is.")


@router.get("/devices", response_model=list[DeviceInfo], summary="Attached devices and their state")
def list_devices(request: Request) -> list[DeviceInfo]:
    return [d.info() for d in _registry(request).devices()]


@router.get("/devices/{device_id}", response_model=DeviceInfo, summary="One device",
            responses={404: {"description": "No such device"}})
def get_device(device_id: str, request: Request) -> DeviceInfo:
    return _registry(request).get(device_id).info()


@router.post("/devices/{device_id}/capture", response_model=CaptureOut,
             summary="Capture one fingerprint impression",
             responses={404: {"description": "No such device"}, 409: {"description": "Busy or not a scanner"},
                        410: {"description": "The device disappeared"}, 504: {"description": "Timed out"}})
def capture(device_id: str, body: CaptureRequest, request: Request) -> CaptureOut:
    dev = _registry(request).get(device_id)
    if not isinstance(dev, FingerprintScanner):
        raise DeviceStateError(f"{device_id} is a {dev.device_class.value}, not a fingerprint scanner", device_id)
    got = capture_assessed(dev, body.kind, body.position, timeout_s=body.timeout_s, assess=body.assess)
    imp = got.impression
    ok, png = cv2.imencode(".png", imp.image)
    if not ok:
        raise DeviceProtocolError("the captured image could not be encoded as PNG", device_id)
    meta = imp.meta()
    return CaptureOut(device_id=device_id, kind=meta["kind"], position=meta["position"], width=meta["width"],
                      height=meta["height"], dpi=meta["dpi"], duration_s=meta["duration_s"],
                      image_png=base64.b64encode(png.tobytes()).decode(), nfiq2=got.nfiq2, quality_note=got.note)


@router.get("/devices/{device_id}/frame", summary="One camera frame as JPEG",
            responses={200: {"content": {"image/jpeg": {}}}, 409: {"description": "Not a camera"}})
def camera_frame(device_id: str, request: Request) -> Response:
    dev = _registry(request).get(device_id)
    if not isinstance(dev, Camera):
        raise DeviceStateError(f"{device_id} is a {dev.device_class.value}, not a camera", device_id)
    frame = dev.read()
    ok, jpg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise DeviceProtocolError("the camera frame could not be encoded as JPEG", device_id)
    return Response(jpg.tobytes(), media_type="image/jpeg")


class FaultRequest(BaseModel):
    fault: str = Field(description="Fault name; the device's `details.faults` lists them.")


@router.post("/devices/{device_id}/simulate", status_code=204, summary="Switch on a simulated fault",
             description="Simulated devices only (training, demos, tests): e.g. `unplug` or `stall`.",
             responses={409: {"description": "Not a simulated device"}, 400: {"description": "Unknown fault"}})
def simulate_fault(device_id: str, body: FaultRequest, request: Request) -> Response:
    dev = _registry(request).get(device_id)
    simulate = getattr(dev, "simulate", None)
    if not dev.simulated or simulate is None:
        raise DeviceStateError(f"{device_id} is not a simulated device with faults", device_id)
    try:
        simulate(body.fault)
    except ValueError as exc:
        raise BiostationError(str(exc)) from exc
    return Response(status_code=204)


@router.post("/simulated/replug", summary="Plug unplugged simulated devices back in",
             description="Simulated devices only (training, demos, tests): after an `unplug` fault, puts the "
                         "device back on its simulated bus and rescans, so it is listed (and usable) again.")
def replug_simulated(request: Request) -> dict[str, list[str]]:
    registry = _registry(request)
    registry.scan()  # first drop the unplugged devices still listed
    before = {d.device_id for d in registry.devices()}
    for cls in registry.drivers:
        replug_all = getattr(cls, "replug_all", None)
        if cls.features & Feature.SIMULATED and replug_all is not None:
            replug_all()
    registry.scan()  # the hot-plug monitor may get there first: compare, do not count our own adds
    return {"plugged": sorted({d.device_id for d in registry.devices()} - before)}


@router.get("/events", summary="Device events as a Server-Sent Events stream",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: <kind>` / `data: <json>` records; a comment every 15 s"}})
async def events(request: Request) -> StreamingResponse:
    bus = _registry(request).bus
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=512)

    def forward(event: Event) -> None:  # runs in the publishing (device) thread
        def put() -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
        loop.call_soon_threadsafe(put)

    bus.subscribe(forward)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": biostation events\n\n"
            while True:
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield f"id: {ev.seq}\nevent: {ev.kind.value}\ndata: {json.dumps(ev.to_dict())}\n\n".encode()
        finally:
            bus.unsubscribe(forward)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
