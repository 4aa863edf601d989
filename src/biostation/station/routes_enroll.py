"""Enrollment routes: the desk's applicant sessions over :mod:`.workflows.enrollment`.

Thin callers: every rule (step order, validation, quality gates, the sequence check, duplicate
search, records) lives in the workflow. Answers carry no biometrics except the images a desk
asks for by name, which are sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..errors import DeviceStateError, InvalidInputError
from ..hal import Camera, FingerprintScanner
from ..records import ImpressionKind
from .security import route_options
from .workflows.enrollment import Enrollments, missing_fingers

router = APIRouter(prefix="/v1", tags=["enrollment"])

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_IMAGE_NAME = re.compile(r"^(finger|slap|portrait)[-a-z0-9]{1,40}\.(png|jpg)$")
#: largest uploaded portrait (bytes); a desk camera's JPEG is far smaller
MAX_PORTRAIT_UPLOAD = 25 * 1024 * 1024


def _desk(request: Request) -> Enrollments:
    return request.app.state.enrollments


def _view(desk: Enrollments, sid: str) -> dict[str, Any]:
    st = desk.get(sid).summary()
    st["missing"] = missing_fingers(st)
    return st


class StartRequest(BaseModel):
    operator: str = Field("desk", min_length=1, max_length=64, pattern=r"^[\w .@-]+$",
                          description="Who runs the session (recorded in the audit trail).")


class CaptureRequest(BaseModel):
    device_id: str = Field(max_length=128, description="The fingerprint scanner.")
    kind: ImpressionKind | None = Field(None, description="flat (default) or rolled for a single finger; "
                                        "slaps (13, 14, 15) are always slap.")


class ExceptionRequest(BaseModel):
    reason: str = Field(pattern=r"^(XX|UP)$", description="XX amputated, UP unable to print (bandaged).")


class PortraitCaptureRequest(BaseModel):
    device_id: str = Field(max_length=128, description="The camera.")
    timeout_s: float = Field(15.0, gt=0, le=120)


class ConfirmRequest(BaseModel):
    operator: str = Field("desk", min_length=1, max_length=64, pattern=r"^[\w .@-]+$")
    duplicate_cleared: str | None = Field(None, max_length=500, description="Why the possible duplicates "
                                          "are not the applicant (required when the search found any).")


class CancelRequest(BaseModel):
    operator: str = Field("desk", min_length=1, max_length=64, pattern=r"^[\w .@-]+$")
    reason: str = Field(min_length=1, max_length=500)


@router.post("/enrollments", status_code=201, summary="Start an enrollment session for the next applicant")
def start(body: StartRequest, request: Request) -> dict[str, Any]:
    desk = _desk(request)
    return _view(desk, desk.start(body.operator).session_id)


@router.get("/enrollments", summary="The applicant queue: sessions with their step, newest first")
def queue(request: Request) -> list[dict[str, Any]]:
    return _desk(request).sessions()


@router.get("/enrollments/{session_id}", summary="One session: steps, fingers, checks, what is missing",
            responses={404: {"description": "No such session"}})
def get_session(session_id: str, request: Request) -> dict[str, Any]:
    return _view(_desk(request), session_id)


@router.put("/enrollments/{session_id}/demographics", summary="Set the applicant's demographics",
            responses={409: {"description": "Step out of order"}, 422: {"description": "A field is wrong"}})
def demographics(session_id: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    desk = _desk(request)
    desk.set_demographics(session_id, body)
    return _view(desk, session_id)


@router.post("/enrollments/{session_id}/fingers/{position}/capture",
             summary="Capture a slap (13, 14, 15) or a single finger (1..10) with its quality",
             responses={409: {"description": "Step out of order, busy, or not a scanner"},
                        410: {"description": "The scanner disappeared (the session is unchanged)"}})
def capture(session_id: str, position: int, body: CaptureRequest, request: Request) -> dict[str, Any]:
    dev = request.app.state.registry.get(body.device_id)
    if not isinstance(dev, FingerprintScanner):
        raise DeviceStateError(f"{body.device_id} is a {dev.device_class.value}, not a fingerprint scanner",
                               body.device_id)
    desk = _desk(request)
    shown = desk.capture(session_id, dev, position, body.kind)
    return {"capture": shown, "session": _view(desk, session_id)}


@router.get("/enrollments/{session_id}/preview", summary="The live preview of the capture running now (JPEG)",
            responses={200: {"content": {"image/jpeg": {}}}, 204: {"description": "No capture running"}})
def preview(session_id: str, request: Request) -> Response:
    got = _desk(request).preview(session_id)
    if got is None:
        return Response(status_code=204, headers=_NO_STORE)
    jpg, quality, position, finger = got
    return Response(jpg, media_type="image/jpeg", headers={**_NO_STORE, "X-Quality": "" if quality is None else
                                                            str(quality), "X-Position": str(position),
                                                            "X-Finger": "on" if finger else "off"})


@router.post("/enrollments/{session_id}/fingers/{position}/exception",
             summary="Declare a finger missing (XX) or unable to print (UP)")
def finger_exception(session_id: str, position: int, body: ExceptionRequest, request: Request) -> dict[str, Any]:
    desk = _desk(request)
    desk.declare_exception(session_id, position, body.reason)
    return _view(desk, session_id)


@router.post("/enrollments/{session_id}/portrait/capture", summary="Capture the portrait from a camera (ICAO checks)")
def portrait_capture(session_id: str, body: PortraitCaptureRequest, request: Request) -> dict[str, Any]:
    dev = request.app.state.registry.get(body.device_id)
    if not isinstance(dev, Camera):
        raise DeviceStateError(f"{body.device_id} is a {dev.device_class.value}, not a camera", body.device_id)
    desk = _desk(request)
    shown = desk.capture_portrait(session_id, dev, timeout_s=body.timeout_s)
    return {"portrait": shown, "session": _view(desk, session_id)}


@router.post("/enrollments/{session_id}/portrait", summary="Upload the portrait photo (JPEG, PNG, JPEG 2000)",
             openapi_extra={"requestBody": {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}},
                            **route_options(max_body_bytes=MAX_PORTRAIT_UPLOAD + 64 * 1024)})
async def portrait_upload(session_id: str, request: Request) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    from .routes_face import photo_bytes

    data = await photo_bytes(request)
    if len(data) > MAX_PORTRAIT_UPLOAD:
        raise InvalidInputError(f"photo of {len(data)} bytes; at most {MAX_PORTRAIT_UPLOAD}")
    desk = _desk(request)
    shown = await request.app.state.heavy.run(desk.upload_portrait, session_id, data)
    return {"portrait": shown, "session": await run_in_threadpool(_view, desk, session_id)}


@router.post("/enrollments/{session_id}/duplicates", summary="Search the applicant's fingers in this station's gallery")
def duplicates(session_id: str, request: Request) -> dict[str, Any]:
    desk = _desk(request)
    desk.search_duplicates(session_id)
    return _view(desk, session_id)


@router.post("/enrollments/{session_id}/confirm", summary="Confirm the session: the records are written and queued")
def confirm(session_id: str, body: ConfirmRequest, request: Request) -> dict[str, Any]:
    desk = _desk(request)
    desk.confirm(session_id, body.operator, duplicate_cleared=body.duplicate_cleared)
    sender = request.app.state.outbox
    if sender is not None:
        sender.wake()
    return _view(desk, session_id)


@router.post("/enrollments/{session_id}/cancel", summary="Cancel the session")
def cancel(session_id: str, body: CancelRequest, request: Request) -> dict[str, Any]:
    desk = _desk(request)
    desk.cancel(session_id, body.operator, body.reason)
    return _view(desk, session_id)


@router.get("/enrollments/{session_id}/images/{name}", summary="An image of the session (finger, slap, portrait)",
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
def image(session_id: str, name: str, request: Request) -> Response:
    if not _IMAGE_NAME.match(name):
        raise InvalidInputError("not an image name of this session")
    desk = _desk(request)
    st = desk.get(session_id).state
    named = _image_names(st)
    if name not in named:
        raise InvalidInputError(f"session {session_id} has no image {name}")
    return Response(desk.blob(session_id, name), media_type="image/png" if name.endswith(".png") else "image/jpeg",
                    headers=_NO_STORE)


def _image_names(st: dict[str, Any]) -> set[str]:
    names = {f["image"] for f in st["fingers"].values()}
    for slap in st["slaps"].values():
        names.add(slap["image"])
        names.update(f["image"] for f in slap["fingers"].values())
    if st["portrait"]:
        names.update((st["portrait"]["token"], st["portrait"]["frame"]))
    return names


@router.get("/outbox", tags=["enrollment"], summary="The outbox: finished transactions queued, delivered, refused")
def outbox(request: Request) -> dict[str, Any]:
    st = request.app.state.store.outbox_status()
    return {**st["counts"], "payloads_held": st["payloads_held"], "sender": request.app.state.outbox is not None,
            "last_error": (st["last_error"] or {}).get("error")}
