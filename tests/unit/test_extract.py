"""Fingerprint feature extraction: the pipeline on FVC2002 images, geometry, tracing, bad input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biostation.errors import ImageError
from biostation.fingerprint import TraceRecorder, extract, read_image, tracing
from biostation.fingerprint import trace as trace_mod
from biostation.templates.model import MINUTIA_BIFURCATION, MINUTIA_DTYPE, MINUTIA_ENDING, Template

DPI = {"DB1_B": 500, "DB2_B": 569, "DB3_B": 500, "DB4_B": 500}


def _fvc(shared: Path, db: str, name: str) -> np.ndarray:
    return read_image(shared / "data" / "fvc2002" / db / f"{name}.tif")


def _paired(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Mutually nearest pairs of two minutiae arrays within ``tol`` pixels (index arrays)."""
    d = np.hypot(a["x"][:, None].astype(float) - b["x"][None].astype(float),
                 a["y"][:, None].astype(float) - b["y"][None].astype(float))
    i = d.argmin(axis=1)
    j = d.argmin(axis=0)
    ok = (d[np.arange(len(a)), i] < tol) & (j[i] == np.arange(len(a)))
    return np.nonzero(ok)[0], i[ok]


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a.astype(float) - b.astype(float) + np.pi) % (2 * np.pi) - np.pi)


@pytest.mark.parametrize("db", sorted(DPI))
def test_fvc_images_give_plausible_templates(shared: Path, db: str) -> None:
    img = _fvc(shared, db, "102_3")
    t = extract(img, dpi=DPI[db])
    assert isinstance(t, Template)
    t.validate()
    assert (t.width, t.height, t.dpi) == (img.shape[1], img.shape[0], DPI[db])
    m = t.minutiae
    assert m.dtype == MINUTIA_DTYPE
    # FVC2002 fingers carry some 20-80 minutiae (SecuGen finds 26-39 on median per database)
    assert 12 <= len(m) <= 120, len(m)
    assert set(np.unique(m["kind"])) <= {MINUTIA_ENDING, MINUTIA_BIFURCATION}
    assert (m["kind"] == MINUTIA_BIFURCATION).any() and (m["kind"] == MINUTIA_ENDING).any()
    assert (m["quality"] >= 1).all() and (m["quality"] <= 100).all()
    # no two minutiae on the same spot
    assert len(np.unique(m[["x", "y"]])) == len(m)
    assert t.reason == ""


def test_same_finger_twice_gives_the_same_template(shared: Path) -> None:
    img = _fvc(shared, "DB1_B", "101_1")
    assert extract(img) == extract(img.copy())


def test_impressions_of_one_finger_share_minutiae_after_alignment(shared: Path) -> None:
    """Features must be repeatable: many minutiae of impression 1 reappear in impression 2 once the
    translation between them (found as the mode of pairwise offsets) is removed."""
    a = extract(_fvc(shared, "DB4_B", "103_1")).minutiae
    b = extract(_fvc(shared, "DB4_B", "103_2")).minutiae
    ox = (b["x"][None].astype(float) - a["x"][:, None]).ravel()
    oy = (b["y"][None].astype(float) - a["y"][:, None]).ravel()
    hist, ex, ey = np.histogram2d(ox, oy, bins=[np.arange(-150, 151, 6)] * 2)
    i, j = np.unravel_index(hist.argmax(), hist.shape)
    shifted = a.copy()
    shifted["x"] = np.clip(a["x"] + ex[i] + 3, 0, 65535)
    shifted["y"] = np.clip(a["y"] + ey[j] + 3, 0, 65535)
    ia, _ = _paired(shifted, b, 10)
    assert len(ia) >= 0.3 * min(len(a), len(b)), (len(ia), len(a), len(b))


def test_resolution_aware_same_geometry_at_1000_dpi(shared: Path) -> None:
    """The same finger scanned at twice the resolution gives the same minutiae, in its own pixels."""
    img = _fvc(shared, "DB1_B", "105_2")
    base = extract(img, dpi=500)
    big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    hi = extract(big, dpi=1000)
    assert (hi.width, hi.height, hi.dpi) == (big.shape[1], big.shape[0], 1000)
    half = hi.minutiae.copy()
    half["x"] //= 2
    half["y"] //= 2
    ia, ib = _paired(base.minutiae, half, 4)
    assert len(ia) >= 0.8 * len(base.minutiae), (len(ia), len(base.minutiae), len(half))
    assert np.median(_angle_diff(base.minutiae["angle"][ia], half["angle"][ib])) < np.radians(8)


def test_tracing_sees_every_stage_and_is_off_by_default(shared: Path) -> None:
    img = _fvc(shared, "DB3_B", "104_1")
    assert not trace_mod.active()
    with tracing(TraceRecorder()) as rec:
        t = extract(img)
        assert trace_mod.active()
    assert not trace_mod.active()
    assert list(rec) == list(trace_mod.KEYS)
    assert rec["segmentation"].shape == img.shape and rec["skeleton"].dtype == np.uint8
    assert np.array_equal(rec["minutiae"], t.minutiae)
    # the skeleton is one pixel wide: no 2x2 block of ridge pixels
    s = rec["skeleton"].astype(bool)
    assert not (s[:-1, :-1] & s[1:, :-1] & s[:-1, 1:] & s[1:, 1:]).any()
    # every minutia lies on the skeleton (at 500 dpi, coordinates are not resampled)
    assert rec["skeleton"][t.minutiae["y"], t.minutiae["x"]].all()


def test_windowed_thinning_equals_full_image_passes() -> None:
    from biostation.fingerprint import skeleton as sk

    def full(ridges: np.ndarray) -> np.ndarray:
        s = ridges.copy()
        while True:
            changed = False
            for table in (sk._ZS1, sk._ZS2):
                gone = cv2.LUT(sk.neighbour_code(s), table) & s
                if gone.any():
                    s ^= gone
                    changed = True
            if not changed:
                break
        for table in sk._CORNERS:
            s ^= cv2.LUT(sk.neighbour_code(s), table) & s
        return s

    rng = np.random.default_rng(3)
    for sigma in (1.5, 3.0, 6.0):
        blobs = (cv2.GaussianBlur(rng.random((140, 170)).astype(np.float32), (0, 0), sigma) > 0.5).astype(np.uint8)
        assert np.array_equal(sk.thin(blobs), full(blobs))


def test_sinks_are_context_local() -> None:
    seen: list[str] = []
    with tracing(lambda k, v: seen.append(k)):
        trace_mod.emit("a", 1)
        with tracing(lambda k, v: None):
            trace_mod.emit("b", 2)
        trace_mod.emit("c", 3)
    trace_mod.emit("d", 4)
    assert seen == ["a", "c"]


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    None, "image.png", [[0, 1], [2, 3]], np.zeros(0, np.uint8), np.zeros((0, 10), np.uint8),
    np.zeros((1, 1), np.uint8), np.zeros((10, 10), np.uint8), np.zeros((50, 50, 7), np.uint8),
    np.zeros((4, 50, 50, 3), np.uint8), np.full((64, 64), np.nan, np.float32),
    np.zeros((64, 64), np.complex64), np.zeros((64, 64), object),
])
def test_not_an_image_raises_image_error(bad: object) -> None:
    with pytest.raises(ImageError):
        extract(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("dpi", [0, -500, 10, 100000, float("nan"), "fast"])
def test_bad_resolution_raises_image_error(dpi: object) -> None:
    with pytest.raises(ImageError):
        extract(np.zeros((100, 100), np.uint8), dpi=dpi)  # type: ignore[arg-type]


def test_huge_image_refused_before_any_work() -> None:
    # a zero-stride view: 400 MB "image" that allocates nothing; it must be refused on its shape
    huge = np.broadcast_to(np.uint8(128), (20000, 20000))
    with pytest.raises(ImageError, match="too large"):
        extract(huge)


@pytest.mark.parametrize("value", [0, 255, 128])
def test_flat_images_give_an_empty_template_with_reason(value: int) -> None:
    t = extract(np.full((300, 300), value, np.uint8))
    assert len(t.minutiae) == 0 and "blank" in t.reason


@pytest.mark.parametrize("size", [300, 1200])
def test_noise_gives_an_empty_template_with_reason(size: int) -> None:
    rng = np.random.default_rng(7)
    for kind in ("uniform", "gauss", "salt"):
        if kind == "uniform":
            img = rng.integers(0, 256, (size, size), dtype=np.uint8)
        elif kind == "gauss":
            img = np.clip(rng.normal(128, 40, (size, size)), 0, 255).astype(np.uint8)
        else:
            img = np.where(rng.random((size, size)) < 0.05, 0, 255).astype(np.uint8)
        t = extract(img)
        assert len(t.minutiae) == 0 and t.reason, (kind, len(t.minutiae))


def test_finger_sized_limits_are_in_inches() -> None:
    # 3000 x 3000 pixels is 6 x 6 inches at 500 dpi: refused; at 1000 dpi it is 3 x 3: accepted
    img = np.full((3000, 3000), 200, np.uint8)
    with pytest.raises(ImageError, match="inches"):
        extract(img, dpi=500)
    assert "blank" in extract(img, dpi=1000).reason


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(0, 300), w=st.integers(0, 300), dtype=st.sampled_from(["u1", "u2", "f4", "f8", "i4", "?"]),
       fill=st.sampled_from(["random", "zeros", "stripes"]), dpi=st.sampled_from([300, 500, 569, 1000]))
def test_any_array_gives_a_template_or_image_error(h: int, w: int, dtype: str, fill: str, dpi: int) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    if fill == "random":
        img = rng.random((h, w)) * 255
    elif fill == "zeros":
        img = np.zeros((h, w))
    else:
        img = 128 + 100 * np.sin(np.arange(w)[None, :] * 0.7 + np.arange(h)[:, None] * 0.2)
    img = img.astype(dtype)
    try:
        t = extract(img, dpi=dpi)
    except ImageError:
        return
    t.validate()
    assert len(t.minutiae) > 0 or t.reason


def test_other_pixel_types_are_converted(shared: Path) -> None:
    img = _fvc(shared, "DB3_B", "101_1")
    ref = extract(img)
    assert extract(img.astype(np.float32) / 255.0) == ref
    assert extract(np.dstack([img] * 3)) == ref
    assert extract(img.astype(np.uint16) << 8) == ref
    # a bool image (here a thresholded optical scan) is black and white
    assert len(extract(_fvc(shared, "DB1_B", "101_1") > 110).minutiae) > 10


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_bad_files_raise_image_error(tmp_path: Path, shared: Path) -> None:
    from PIL import Image

    cases = {"empty.png": b"", "text.png": b"this is not an image", "huge.png": _png_header(20000, 20000)}
    good = io.BytesIO()
    Image.fromarray(_fvc(shared, "DB1_B", "101_1")).save(good, format="PNG")
    cases["truncated.png"] = good.getvalue()[: len(good.getvalue()) // 2]
    tif = (shared / "data" / "fvc2002" / "DB1_B" / "101_1.tif").read_bytes()
    cases["truncated.tif"] = tif[: len(tif) // 3]
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ImageError):
            read_image(p)
    with pytest.raises(ImageError):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError):
        read_image(tmp_path)


@pytest.mark.parametrize("name", ["109_5", "110_6"])
def test_wide_background_ringed_by_the_platen_frame_is_not_finger(shared: Path, name: str) -> None:
    # FVC2000 DB3 (optical, 448 x 478): a small finger on a wide light platen whose dark frame
    # runs along the image edges. The frame must not enclose the background as a "hole": the
    # finger covers about a quarter of the image, and it is found (not called noise).
    img = read_image(shared / "data" / "fvc2000" / "DB3_B" / f"{name}.tif")
    with tracing(TraceRecorder()) as rec:
        t = extract(img)
    assert 0.1 < float(rec["segmentation"].mean()) < 0.45
    assert len(t.minutiae) >= 15, t.reason


def test_faint_finger_with_poor_coherence_is_not_called_noise(shared: Path) -> None:
    # a faint, dry FVC2000 DB3 impression: most of it is poorly coherent, a part is clear
    t = extract(read_image(shared / "data" / "fvc2000" / "DB3_B" / "105_5.tif"))
    assert len(t.minutiae) >= 15, t.reason
