"""Portrait routes: ICAO / ISO 19794-5 checks of an uploaded photo, and portrait capture from a camera."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..errors import DeviceStateError, ImageError
from ..hal import Camera
from .workflows import capture_portrait

router = APIRouter(prefix="/v1", tags=["portraits"])

#: largest uploaded photo (bytes); a desk camera's JPEG is far smaller
MAX_UPLOAD = 25 * 1024 * 1024


def _report(image: np.ndarray, lang: str) -> dict[str, Any]:
    from ..face import check_portrait, encode_jpeg, token_image

    report = check_portrait(image)
    out = report.to_dict()
    out["lang"] = lang
    if report.passed and report.face is not None:
        token = token_image(image, report.face.right_eye, report.face.left_eye)
        out["token_jpeg"] = base64.b64encode(encode_jpeg(token)).decode()
    return out


@router.post("/face/check", summary="Check a portrait photo (ICAO / ISO 19794-5)",
             description="Body: the photo file (JPEG, PNG...). Every check with its value, threshold and reason "
                         "(Vietnamese and English); when all pass, the ISO token image as JPEG.",
             openapi_extra={"requestBody": {"content": {"image/*": {"schema": {"type": "string",
                                                                              "format": "binary"}}}}})
async def face_check(request: Request, lang: str = "en") -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise ImageError(f"photo of {len(body)} bytes; at most {MAX_UPLOAD}")
    from ..face import load_image

    image = load_image(body)
    return _report(image, lang)


class PortraitRequest(BaseModel):
    timeout_s: float = Field(15.0, gt=0, le=120, description="Give up (returning the best frame) after this.")


@router.post("/devices/{device_id}/portrait", summary="Capture a compliant portrait from a camera",
             description="Auto-captures the first frame on which every check passes (two frames in a row); at "
                         "the timeout returns the best frame with its failed checks.")
def capture_portrait_route(device_id: str, body: PortraitRequest, request: Request) -> dict[str, Any]:
    dev = request.app.state.registry.get(device_id)
    if not isinstance(dev, Camera):
        raise DeviceStateError(f"{device_id} is a {dev.device_class.value}, not a camera", device_id)
    result = capture_portrait(dev, timeout_s=body.timeout_s)
    out: dict[str, Any] = {"status": result.status, "frames": result.frames,
                           "elapsed_s": round(result.elapsed_s, 3)}
    if result.image is not None:
        out.update(_report(result.image, "en"))
        ok, jpg = cv2.imencode(".jpg", result.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            out["frame_jpeg"] = base64.b64encode(jpg.tobytes()).decode()
    return out
