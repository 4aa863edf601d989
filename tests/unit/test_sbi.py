"""MOSIP SBI 0.9.5 through real HTTP: every verb on uvicorn's h11 parser, signatures checked with
jwcrypto (not with the code that made them), the hash chain, the ISO/IEC 19794-4/-5:2011
payloads decoded back to the captured images, CORS as browsers send it, and the spec's error
codes (also for faults inside a capture, a busy device, another env or device id)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import socket
import stat
import threading
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwcrypto import jwk, jws

from biostation.hal import DriverRegistry
from biostation.hal import FingerPosition as FP
from biostation.records import iso19794_4, iso19794_5
from biostation.records.iso19794_1 import NFIQ2_QUALITY, QualityBlock
from biostation.station.sbi import SbiService, bind_first_free
from biostation_drivers.simulated.camera import SimulatedCamera
from biostation_drivers.simulated.scanner import SimulatedScanner

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
FVC = SHARED / "data" / "fvc2002" / "DB1_B"
PORTRAIT = SHARED / "data" / "faces" / "LONDON_FRL" / "001" / "1_neutral.jpg"
LEFT_FOUR = ["Left LittleFinger", "Left RingFinger", "Left MiddleFinger", "Left IndexFinger"]


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@pytest.fixture(scope="module")
def slap():
    from biostation.fingerprint.slap_compose import compose_slap

    if not FVC.is_dir():
        pytest.skip("../shared FVC2002 data not present")
    fingers = [cv2.imread(str(FVC / f"10{i}_1.tif"), cv2.IMREAD_GRAYSCALE) for i in (1, 2, 3, 4)]
    img, _ = compose_slap(fingers, FP.PLAIN_LEFT_FOUR, angles=[5, -5, 8, 0])
    return img


@pytest.fixture
def station(settings, slap):
    """A registry with a slap scanner (serving ``slap``) and a camera, and the SBI on free ports."""
    s = settings.model_copy(update={"sim_time_scale": 0.05, "sbi_port_first": 0})
    reg = DriverRegistry(s, drivers=[])
    scanner = SimulatedScanner.create(images=[slap], settings=s, key="sim:s1")
    scanner.max_image_size = (4096, 4096)
    reg.add(scanner)
    camera = reg.add(SimulatedCamera.create(PORTRAIT, settings=s, key="sim:c1")) if PORTRAIT.is_file() else None
    svc = SbiService(s, reg)
    with svc.running_in_thread():
        yield svc, reg, scanner, camera


def _url(svc, dev, path):
    return f"http://127.0.0.1:{svc.ports[dev.device_id]}{path}"


def _call(verb, url, body=None, **kw):
    content = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
    return httpx.request(verb, url, content=content, headers={"Content-Type": "application/json", **kw.pop("headers", {})},
                         timeout=kw.pop("timeout", 60), **kw)


def _verify(token: str, ca: x509.Certificate) -> tuple[dict, dict]:
    """Check a compact JWS with jwcrypto against its x5c certificate, and that certificate against
    the device CA; returns (header, payload)."""
    header = json.loads(_b64d(token.split(".")[0]))
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and len(header["x5c"]) == 1
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    cert.verify_directly_issued_by(ca)
    key = jwk.JWK.from_pem(cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    obj = jws.JWS()
    obj.deserialize(token)
    obj.verify(key, alg="RS256")  # raises InvalidJWSSignature
    return header, json.loads(obj.payload)


def _ca(svc) -> x509.Certificate:
    return x509.load_pem_x509_certificate(svc.keys.ca_path.read_bytes())


def _rcapture_body(txn="txn-0001", **bio):
    entry = {"type": "Finger", "count": 4, "deviceSubId": 1, "requestedScore": 10, "bioSubType": [],
             "exception": [], "previousHash": "", "deviceId": ""}
    entry.update(bio)
    return {"env": "Developer", "purpose": "Registration", "specVersion": "0.9.5", "timeout": 20000,
            "captureTime": "2026-12-03T08:00:00Z", "transactionId": txn, "bio": [entry], "customOpts": None}


DIGITAL_ID_FIELDS = {"serialNo", "make", "model", "type", "deviceSubType", "deviceProvider", "deviceProviderId",
                     "dateTime"}


def test_mosipdisc_lists_each_device_with_the_spec_fields_and_follows_hot_plug(station, settings):
    svc, reg, scanner, camera = station
    r = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Biometric Device"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["location"] == f"http://127.0.0.1:{svc.ports[scanner.device_id]}"
    [d] = r.json()
    assert set(d) == {"deviceId", "deviceStatus", "certification", "serviceVersion", "deviceSubId", "callbackId",
                      "digitalId", "deviceCode", "specVersion", "purpose", "error"}
    assert d["deviceStatus"] == "Ready" and d["certification"] == "L0" and d["purpose"] == "Registration"
    assert d["deviceSubId"] == ["1", "2", "3"] and d["specVersion"] == ["0.9.5"]
    assert d["callbackId"] == f"http://127.0.0.1:{svc.ports[scanner.device_id]}/"
    assert d["error"] == {"errorCode": "0", "errorInfo": "Success"}
    digital = json.loads(_b64d(d["digitalId"]))  # unsigned in discovery
    assert set(digital) == DIGITAL_ID_FIELDS and digital["type"] == "Finger" and digital["deviceSubType"] == "Slap"
    assert d["deviceCode"] == digital["serialNo"]
    # type filter: Finger answers, Face and Iris get an empty list; an unknown type is refused
    assert len(_call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()) == 1
    assert _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Iris"}).json() == []
    bad = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Toaster"})
    assert bad.status_code == 400 and bad.json()["error"]["errorCode"] == "501"
    if camera is not None:
        [c] = _call("MOSIPDISC", _url(svc, camera, "/device"), {"type": "Face"}).json()
        assert c["deviceSubId"] == ["0"] and json.loads(_b64d(c["digitalId"]))["deviceSubType"] == "Full face"
        assert _call("MOSIPDISC", _url(svc, camera, "/device"), {"type": "Finger"}).json() == []
    # unplugged: the port stays and says Not Ready (110); plugged back in: Ready
    reg.remove(scanner.device_id)
    [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
    assert d["deviceStatus"] == "Not Ready" and d["error"]["errorCode"] == "110"
    reg.add(SimulatedScanner.create(settings=scanner.settings, key="sim:s1"))
    [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
    assert d["deviceStatus"] == "Ready"


def test_mosipdinfo_is_signed_by_the_device_key_under_the_test_ca(station):
    svc, reg, scanner, camera = station
    r = _call("MOSIPDINFO", _url(svc, scanner, "/info"))
    assert r.status_code == 200
    [entry] = r.json()
    assert entry["error"]["errorCode"] == "0"
    header, info = _verify(entry["deviceInfo"], _ca(svc))
    assert set(info) == {"deviceStatus", "deviceId", "firmware", "certification", "serviceVersion", "deviceSubId",
                         "callbackId", "digitalId", "deviceCode", "env", "purpose", "specVersion"}
    assert info["deviceStatus"] == "Ready" and info["purpose"] == "Registration" and info["env"] == "Developer"
    assert info["specVersion"] == ["0.9.5"] and info["certification"] == "L0"
    _, digital = _verify(info["digitalId"], _ca(svc))  # signed here, by the device key (L0)
    assert set(digital) == DIGITAL_ID_FIELDS and digital["serialNo"] == info["deviceCode"]
    # a tampered payload fails jwcrypto's check
    h, p, s = entry["deviceInfo"].split(".")
    forged = json.loads(_b64d(p))
    forged["deviceStatus"] = "Busy"
    p2 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    from jwcrypto.jws import InvalidJWSSignature

    with pytest.raises(InvalidJWSSignature):
        _verify(f"{h}.{p2}.{s}", _ca(svc))
    # the device keys are on disk, private ones 0600
    keys = svc.keys.folder
    for f in keys.glob("*.key"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_rcapture_slap_end_to_end(station, slap):
    from biostation.fingerprint.nfiq2 import nfiq2
    from biostation.fingerprint.slap import segment_slap

    svc, reg, scanner, camera = station
    prev = "AB" * 32  # a hash from an earlier capture of the same registration
    r = _call("RCAPTURE", _url(svc, scanner, "/capture"), _rcapture_body("abc-123-XYZ", previousHash=prev))
    assert r.status_code == 200
    bios = r.json()["biometrics"]
    assert len(bios) == 4
    expected = segment_slap(slap, FP.PLAIN_LEFT_FOUR, dpi=500).by_position()
    chain = prev
    for entry, name in zip(bios, LEFT_FOUR):
        assert set(entry) == {"specVersion", "data", "hash", "error"} and entry["error"]["errorCode"] == "0"
        assert entry["specVersion"] == "0.9.5"
        _, data = _verify(entry["data"], _ca(svc))
        assert set(data) == {"digitalId", "deviceCode", "deviceServiceVersion", "bioType", "bioSubType", "purpose",
                             "env", "bioValue", "transactionId", "timestamp", "requestedScore", "qualityScore"}
        assert data["transactionId"] == "abc-123-XYZ" and data["bioType"] == "Finger" and data["bioSubType"] == name
        assert data["purpose"] == "Registration" and data["env"] == "Developer" and data["requestedScore"] == 10
        assert data["timestamp"].endswith("Z") and len(data["timestamp"]) == 20
        _verify(data["digitalId"], _ca(svc))
        iso = _b64d(data["bioValue"])
        # hash chain: SHA256(previous hash bytes || SHA256(ISO record)), upper-case hex
        chain = hashlib.sha256(bytes.fromhex(chain) + hashlib.sha256(iso).digest()).hexdigest().upper()
        assert entry["hash"] == chain
        record = _check_mosip_finger_2011(iso)
        image = record.decode_view(0)
        want = expected[FP(record.views[0].position)]
        assert np.array_equal(image, want.image)  # lossless: the captured finger, pixel for pixel
        assert data["qualityScore"] == nfiq2(image, dpi=500).score == record.views[0].quality
        assert record.views[0].quality_blocks == [QualityBlock(record.views[0].quality, *NFIQ2_QUALITY)]
    # exceptions: the amputated ring finger is not captured, the others are
    r = _call("RCAPTURE", _url(svc, scanner, "/capture"),
              _rcapture_body("txn-0002", count=3, exception=["Left RingFinger"]))
    names = [_verify(b["data"], _ca(svc))[1]["bioSubType"] for b in r.json()["biometrics"]]
    assert names == ["Left LittleFinger", "Left MiddleFinger", "Left IndexFinger"]
    # bioSubType asks for one finger only; a first capture chains from SHA256("")
    r = _call("RCAPTURE", _url(svc, scanner, "/capture"),
              _rcapture_body("txn-0003", count=1, bioSubType=["Left IndexFinger"]))
    [entry] = r.json()["biometrics"]
    iso = _b64d(_verify(entry["data"], _ca(svc))[1]["bioValue"])
    assert entry["hash"] == hashlib.sha256(hashlib.sha256(b"").digest() + hashlib.sha256(iso).digest()).hexdigest().upper()


def _check_mosip_finger_2011(iso: bytes) -> iso19794_4.FingerImageRecord:
    """A 19794-4:2011 record as MOSIP's registration checks it (biometrics-util's
    FingerISOStandardsValidator): version 020, one representation of one finger 1..10, 490..1010
    ppi, 8 bits, JPEG 2000 lossless; decoded with the 2011 decoder."""
    assert iso[:8] == b"FIR\x00020\x00" and iso19794_4.edition_of(iso) == 2011
    record = iso19794_4.decode(iso)
    assert record.edition == 2011 and len(record.views) == 1 and iso[12:14] == b"\x00\x01" and iso[15] == 1
    v = record.views[0]
    assert 1 <= v.position <= 10 and 0 <= v.representation <= 15 and v.impression == 0
    assert record.scale_units == 1 and all(490 <= r <= 1010 for r in record.scan_ppi + record.image_ppi)
    assert record.pixel_depth == 8 and record.compression == iso19794_4.Compression.JPEG2000_LOSSLESS
    assert v.captured_at is not None and abs((v.captured_at - dt.datetime.now(dt.UTC)).total_seconds()) < 600
    return record


def _check_mosip_face_2011(iso: bytes, face_image_type: int) -> iso19794_5.FaceImage:
    """A 19794-5:2011 record as MOSIP's registration checks it (FaceISOStandardsValidator):
    version 030, one representation, no certification, JPEG 2000 lossless, 24-bit RGB."""
    assert iso[:8] == b"FAC\x00030\x00" and iso19794_5.edition_of(iso) == 2011
    assert iso[12:14] == b"\x00\x01" and iso[14] == 0 and iso[15:17] == b"\x00\x00"
    [face] = iso19794_5.decode(iso)
    assert face.image_type == iso19794_5.IMAGE_JPEG2000_LOSSLESS and face.colour_space == 1
    assert face.face_image_type == face_image_type and 0 <= face.source_type <= 6
    return face


def test_rcapture_face_end_to_end(station):
    svc, reg, scanner, camera = station
    if camera is None:
        pytest.skip("../shared portrait not present")
    body = _rcapture_body("face-0001", type="Face", count=1, deviceSubId=0)
    r = _call("RCAPTURE", _url(svc, camera, "/capture"), body)
    [entry] = r.json()["biometrics"]
    assert entry["error"]["errorCode"] == "0", entry
    _, data = _verify(entry["data"], _ca(svc))
    assert data["bioType"] == "Face" and data["transactionId"] == "face-0001"
    face = _check_mosip_face_2011(_b64d(data["bioValue"]), face_image_type=1)  # full frontal
    assert face.quality_blocks == [QualityBlock(face.quality)]
    shown = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    frame = camera.read().image
    decoded = face.decode_image()
    assert decoded.shape == frame.shape and np.array_equal(decoded[:, :, ::-1], frame)
    assert shown is not None and 0 <= data["qualityScore"] <= 100 and face.quality == data["qualityScore"]


def test_rcapture_errors_are_the_spec_codes(station, settings):
    svc, reg, scanner, camera = station
    url = _url(svc, scanner, "/capture")

    def code(r):
        return r.json()["biometrics"][0]["error"]["errorCode"]

    assert code(_call("RCAPTURE", url, _rcapture_body("x!"))) == "112"  # transactionId: 4-50 [A-Za-z0-9-]
    assert code(_call("RCAPTURE", url, _rcapture_body("t" * 51))) == "112"
    assert code(_call("RCAPTURE", url, _rcapture_body(count=5))) == "109"
    assert code(_call("RCAPTURE", url, _rcapture_body(bioSubType=["Right Thumb"], count=1))) == "501"
    assert code(_call("RCAPTURE", url, {**_rcapture_body(), "specVersion": "9.9"})) == "501"
    assert code(_call("RCAPTURE", url, {**_rcapture_body(), "env": "Moon"})) == "501"
    assert code(_call("RCAPTURE", url, {**_rcapture_body(), "timeout": -1})) == "501"
    assert code(_call("RCAPTURE", url, {**_rcapture_body(), "purpose": "Auth"})) == "501"
    assert code(_call("RCAPTURE", url, _rcapture_body(type="Iris"))) == "501"
    assert code(_call("RCAPTURE", url, _rcapture_body(deviceId="someone-else"))) == "106"
    assert code(_call("RCAPTURE", url, _rcapture_body(deviceSubId="9"))) == "501"
    assert code(_call("CAPTURE", url, _rcapture_body())) == "503"  # auth capture needs L1
    bad = _call("RCAPTURE", url, b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["errorCode"] == "500"
    big = _call("RCAPTURE", url, b"[" + b"1," * 40000 + b"1]")
    assert big.status_code == 413 and big.json()["error"]["errorCode"] == "505"
    unknown = _call("MOSIPFOO", url, {})
    assert unknown.status_code == 405 and unknown.json()["error"]["errorCode"] == "502"
    assert _call("MOSIPDISC", _url(svc, scanner, "/nowhere"), {}).status_code == 404
    # one capture at a time: a stalled scanner keeps the first; the second gets 111 (Busy)
    scanner.stall = True
    first: list = []
    t = threading.Thread(target=lambda: first.append(_call("RCAPTURE", url, _rcapture_body("slow-1") | {"timeout": 20000})))
    t.start()
    for _ in range(400):
        [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
        if d["deviceStatus"] == "Busy":
            break
        threading.Event().wait(0.01)
    assert d["deviceStatus"] == "Busy"
    assert code(_call("RCAPTURE", url, _rcapture_body("fast-2"))) == "111"
    while t.is_alive():  # the stalled capture ends when cancelled (not by waiting out its timeout)
        scanner.cancel()
        t.join(0.1)
    scanner.stall = False
    assert code(first[0]) in ("101", "0")
    # the device unplugged: capture says 110 (not ready), STREAM 202 (no device connected)
    reg.remove(scanner.device_id)
    assert code(_call("RCAPTURE", url, _rcapture_body("gone-1"))) == "110"
    gone = _call("STREAM", _url(svc, scanner, "/stream"), {"deviceSubId": 1, "timeout": 1000})
    assert gone.status_code == 404 and gone.json()["error"]["errorCode"] == "202"


def test_stream_sends_mjpeg_parts_with_content_length(station):
    svc, reg, scanner, camera = station
    with httpx.stream("STREAM", _url(svc, scanner, "/stream"), timeout=30,
                      content=json.dumps({"deviceId": scanner.device_id, "deviceSubId": 1, "timeout": 1500})) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "multipart/x-mixed-replace; boundary=--BoundaryString"
        assert r.headers["access-control-allow-origin"] == "*"
        raw = b"".join(r.iter_bytes())
    parts = [p for p in raw.split(b"--BoundaryString\r\n") if p]
    assert len(parts) >= 2
    for part in parts:
        head, _, rest = part.partition(b"\r\n\r\n")
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n"))
        assert fields[b"Content-Type"] == b"image/jpeg"
        n = int(fields[b"Content-Length"])
        assert rest[n:] == b"\r\n\r\n"
        assert cv2.imdecode(np.frombuffer(rest[:n], np.uint8), cv2.IMREAD_UNCHANGED) is not None
    # a capture started while the stream is open takes the scanner; the stream shows its preview
    # with the quality overlay (colour frames; the idle preview is grey)
    colour: list[bool] = []
    started = threading.Event()

    def watch() -> None:
        with httpx.stream("STREAM", _url(svc, scanner, "/stream"), timeout=60,
                          content=json.dumps({"deviceSubId": 1, "timeout": 60000})) as r:
            buf = b""
            for chunk in r.iter_bytes():
                buf += chunk
                while True:
                    m = re.search(rb"Content-Length:(\d+)\r\n\r\n", buf)
                    if not m or len(buf) < m.end() + int(m.group(1)):
                        break
                    jpeg = buf[m.end():m.end() + int(m.group(1))]
                    buf = buf[m.end() + int(m.group(1)):]
                    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
                    colour.append(img.ndim == 3)
                    started.set()
                    if any(colour):
                        return

    t = threading.Thread(target=watch)
    t.start()
    assert started.wait(30)
    # the stream's own preview does not make the device look busy to discovery
    [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
    assert d["deviceStatus"] == "Ready"
    r = _call("RCAPTURE", _url(svc, scanner, "/capture"), _rcapture_body("stream-01", requestedScore=100))
    assert all(b["error"]["errorCode"] == "0" for b in r.json()["biometrics"]), r.json()
    t.join(60)
    assert any(colour)
    # streams per device are capped (each holds a worker of the device's own pool)
    from contextlib import ExitStack

    from biostation.station.sbi.server import MAX_STREAMS

    with ExitStack() as stack:
        for _ in range(MAX_STREAMS):
            r = stack.enter_context(httpx.stream("STREAM", _url(svc, scanner, "/stream"), timeout=30,
                                                 content=json.dumps({"deviceSubId": 1, "timeout": 20000})))
            assert r.status_code == 200
        extra = _call("STREAM", _url(svc, scanner, "/stream"), {"deviceSubId": 1, "timeout": 1000})
        assert extra.status_code == 503 and extra.json()["error"]["errorCode"] == "506"
        assert _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).status_code == 200
    bad = _call("STREAM", _url(svc, scanner, "/stream"), {"deviceSubId": 7})
    assert bad.status_code == 400 and bad.json()["error"]["errorCode"] == "501"


def test_cors_preflight_and_what_another_origin_gets(station, settings):
    from biostation.station.auth import ensure_token

    svc, reg, scanner, camera = station
    origin = {"Origin": "https://registration.example"}
    for verb, path in (("MOSIPDISC", "/device"), ("MOSIPDINFO", "/info"), ("RCAPTURE", "/capture"), ("STREAM", "/stream")):
        pre = httpx.request("OPTIONS", _url(svc, scanner, path), headers={
            **origin, "Access-Control-Request-Method": verb, "Access-Control-Request-Headers": "content-type"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "*"
        assert verb in pre.headers["access-control-allow-methods"].split(", ")
        assert pre.headers["access-control-allow-headers"].lower() == "content-type"
        assert "access-control-allow-credentials" not in pre.headers
    token = ensure_token(svc.settings.token_path)  # the daemon's API token exists on this station
    r = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"},
              headers={**origin, "Authorization": f"Bearer {token}", "Cookie": "biostation_session=x"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers and "set-cookie" not in r.headers
    info = _call("MOSIPDINFO", _url(svc, scanner, "/info"), headers=origin)
    for resp in (r, info):
        assert token not in resp.text and token not in str(resp.headers)
    # unknown paths get no preflight; a Host other than the loopback (DNS rebinding) is refused
    assert httpx.request("OPTIONS", _url(svc, scanner, "/v1/devices"), headers=origin).status_code == 404
    rebound = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}, headers={"Host": "evil.example"})
    assert rebound.status_code == 400 and rebound.json()["error"]["errorCode"] == "501"


def test_ports_are_the_first_free_ones_on_loopback_only():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    taken = probe.getsockname()[1]
    probe.listen(1)
    try:
        sock = bind_first_free(taken, taken + 20)
        try:
            host, port = sock.getsockname()
            assert host == "127.0.0.1" and taken < port <= taken + 20
        finally:
            sock.close()
        with pytest.raises(OSError):
            bind_first_free(taken, taken)
    finally:
        probe.close()


def _single_finger_service(settings, image: str, key: str, **update) -> tuple[SbiService, SimulatedScanner, np.ndarray]:
    """An SBI service over one simulated single-finger scanner (no slaps, no preview) that holds
    the FVC image ``image`` (returned too); ``update``: more settings."""
    from biostation.hal import Feature

    if not FVC.is_dir():
        pytest.skip("../shared FVC2002 data not present")
    finger = cv2.imread(str(FVC / image), cv2.IMREAD_GRAYSCALE)
    s = settings.model_copy(update={"sim_time_scale": 0.05, "sbi_port_first": 0, **update})
    reg = DriverRegistry(s, drivers=[])
    scanner = SimulatedScanner.create(images=[finger], settings=s, key=key)
    scanner.features = scanner.features & ~Feature.CAPTURE_SLAP & ~Feature.PREVIEW
    reg.add(scanner)
    return SbiService(s, reg), scanner, finger


def test_single_finger_scanner_is_a_single_device(settings):
    from biostation.fingerprint.nfiq2 import nfiq2
    svc, scanner, finger = _single_finger_service(settings, "101_1.tif", "sim:single")
    with svc.running_in_thread():
        [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
        assert d["deviceSubId"] == ["0"] and json.loads(_b64d(d["digitalId"]))["deviceSubType"] == "Single"
        r = _call("RCAPTURE", _url(svc, scanner, "/capture"),
                  _rcapture_body("single-1", count=1, deviceSubId=0, bioSubType=["Right Thumb"]))
        [entry] = r.json()["biometrics"]
        _, data = _verify(entry["data"], _ca(svc))
    assert data["bioSubType"] == "Right Thumb"
    record = _check_mosip_finger_2011(_b64d(data["bioValue"]))
    assert record.views[0].position == FP.RIGHT_THUMB
    image = record.decode_view(0)
    assert np.array_equal(image, finger) and data["qualityScore"] == nfiq2(image, dpi=500).score


def _code(r) -> str:
    return r.json()["biometrics"][0]["error"]["errorCode"]


def test_a_fault_inside_a_capture_answers_102_in_the_verbs_shape(station, monkeypatch):
    """The segmenter (slap) and the ICAO checks (face) raising an unexpected error: the spec's 102
    with HTTP 200 in RCAPTURE's shape, and the device is free again for the next capture."""
    import biostation.fingerprint.slap as slap_mod
    import biostation.station.workflows.portrait as portrait_mod
    from biostation.errors import ImageError

    svc, reg, scanner, camera = station

    def broken(*a, **kw):
        raise RuntimeError("segmenter bug")

    monkeypatch.setattr(slap_mod, "segment_slap", broken)
    r = _call("RCAPTURE", _url(svc, scanner, "/capture"), _rcapture_body("fault-01") | {"timeout": 3000})
    assert r.status_code == 200
    [entry] = r.json()["biometrics"]
    assert entry == {"specVersion": "0.9.5", "data": "", "hash": "",
                     "error": {"errorCode": "102", "errorInfo": "Technical error during extraction"}}
    [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
    assert d["deviceStatus"] == "Ready" and d["error"]["errorCode"] == "0"

    def unreadable(*a, **kw):
        raise ImageError("no ridges to segment")

    # a slap the segmenter finds nothing in is no biometric object (101), not a fault
    monkeypatch.setattr(slap_mod, "segment_slap", unreadable)
    r = _call("RCAPTURE", _url(svc, scanner, "/capture"), _rcapture_body("fault-03") | {"timeout": 500})
    assert r.status_code == 200 and _code(r) == "101"
    if camera is not None:
        monkeypatch.setattr(portrait_mod, "check_portrait", broken)
        r = _call("RCAPTURE", _url(svc, camera, "/capture"),
                  _rcapture_body("fault-02", type="Face", count=1, deviceSubId=0) | {"timeout": 3000})
        assert r.status_code == 200 and _code(r) == "102"


def test_a_busy_device_says_111_in_discovery_and_device_info(station):
    svc, reg, scanner, camera = station
    scanner.stall = True
    first: list = []
    t = threading.Thread(target=lambda: first.append(
        _call("RCAPTURE", _url(svc, scanner, "/capture"), _rcapture_body("busy-01") | {"timeout": 20000})))
    t.start()
    try:
        for _ in range(400):
            [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
            if d["deviceStatus"] == "Busy":
                break
            threading.Event().wait(0.01)
        assert d["deviceStatus"] == "Busy" and d["error"] == {"errorCode": "111", "errorInfo": "Device is Busy"}
        [entry] = _call("MOSIPDINFO", _url(svc, scanner, "/info")).json()
        _, info = _verify(entry["deviceInfo"], _ca(svc))
        assert info["deviceStatus"] == "Busy" and entry["error"]["errorCode"] == "111"
    finally:
        while t.is_alive():
            scanner.cancel()
            t.join(0.1)
        scanner.stall = False
    [d] = _call("MOSIPDISC", _url(svc, scanner, "/device"), {"type": "Finger"}).json()
    assert d["deviceStatus"] == "Ready" and d["error"]["errorCode"] == "0"


def test_stream_checks_the_device_id_like_rcapture(station):
    svc, reg, scanner, camera = station
    other = _call("STREAM", _url(svc, scanner, "/stream"), {"deviceId": "someone-else", "deviceSubId": 1,
                                                              "timeout": 1000})
    assert other.status_code == 404 and other.json()["error"]["errorCode"] == "106"
    with httpx.stream("STREAM", _url(svc, scanner, "/stream"), timeout=30,
                      content=json.dumps({"deviceId": scanner.device_id, "deviceSubId": 1, "timeout": 300})) as r:
        assert r.status_code == 200


def test_count_must_match_what_the_entry_yields(station):
    """The spec: the device validates that count is in line with what it captures."""
    svc, reg, scanner, camera = station
    url = _url(svc, scanner, "/capture")
    assert _code(_call("RCAPTURE", url, _rcapture_body(count=3))) == "109"  # four fingers on the left slap
    assert _code(_call("RCAPTURE", url, _rcapture_body(count=4, exception=["Left RingFinger"]))) == "109"
    assert _code(_call("RCAPTURE", url, _rcapture_body(count=2, bioSubType=["Left IndexFinger"]))) == "109"
    if camera is not None:
        face = _rcapture_body("face-0009", type="Face", count=2, deviceSubId=0)
        assert _code(_call("RCAPTURE", _url(svc, camera, "/capture"), face)) == "109"


def test_face_exception_photo_skips_the_icao_gates(station, monkeypatch):
    """bio.exception on a face asks for the exception photo (face and palms): captured without the
    ICAO checks (they are made to fail here: no ICAO gate may stop it), marked in its 2011 record
    as a basic (not full frontal) face image, pixel for pixel the camera's frame."""
    import biostation.station.workflows.portrait as portrait_mod

    svc, reg, scanner, camera = station
    if camera is None:
        pytest.skip("../shared portrait not present")

    def no_icao(*a, **kw):
        raise AssertionError("the exception photo ran the ICAO checks")

    monkeypatch.setattr(portrait_mod, "check_portrait", no_icao)
    body = _rcapture_body("face-exc-1", type="Face", count=1, deviceSubId=0,
                          exception=["Left Thumb", "Left IndexFinger"])
    [entry] = _call("RCAPTURE", _url(svc, camera, "/capture"), body).json()["biometrics"]
    assert entry["error"]["errorCode"] == "0", entry
    _, data = _verify(entry["data"], _ca(svc))
    assert data["bioType"] == "Face" and data["bioSubType"] == ""
    face = _check_mosip_face_2011(_b64d(data["bioValue"]), face_image_type=0)  # basic
    assert np.array_equal(face.decode_image()[:, :, ::-1], camera.read().image)
    assert 0 < data["qualityScore"] <= 100 and face.quality == data["qualityScore"]


def test_env_is_a_setting_and_a_capture_for_another_env_is_refused(settings):
    """deviceInfo says the configured env; the signed capture says the same; a request for another
    env gets 100 (the device is not registered there) instead of a signed answer contradicting it."""
    svc, scanner, _ = _single_finger_service(settings, "102_1.tif", "sim:env", sbi_env="Staging")
    with svc.running_in_thread():
        [entry] = _call("MOSIPDINFO", _url(svc, scanner, "/info")).json()
        assert _verify(entry["deviceInfo"], _ca(svc))[1]["env"] == "Staging"
        body = _rcapture_body("env-0001", count=1, deviceSubId=0, bioSubType=["Left IndexFinger"])
        r = _call("RCAPTURE", _url(svc, scanner, "/capture"), body)  # env Developer
        assert _code(r) == "100" and r.json()["biometrics"][0]["data"] == ""
        r = _call("RCAPTURE", _url(svc, scanner, "/capture"), body | {"env": "Staging"})
        [ok] = r.json()["biometrics"]
        assert ok["error"]["errorCode"] == "0" and _verify(ok["data"], _ca(svc))[1]["env"] == "Staging"
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        settings.model_validate({**settings.model_dump(), "sbi_env": "Moon"})
