"""Integration fixtures: ONE real pcscd (with the vpcd reader driver) for the whole session.

``pcscd`` starts ``pcscd --foreground`` once (or uses one already running, which it then leaves
alone) and stops it at the end. Tests are skipped, with the reason, where pcscd, the vpcd driver
or pyscard is missing. ``vpcd_card(card, slot=0)`` plugs a virtual card into vpcd slot ``slot``
(``Virtual PCD 00 00`` on TCP 35963, ``... 00 01`` on 35964) and unplugs it after the test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    try:
        import smartcard  # noqa: F401
    except ImportError:
        pytest.skip("pyscard is not installed (pip install pyscard; needs libpcsclite-dev and swig)")
    from biostation_drivers.simulated.vcard.pcscd import ensure_pcscd, pcscd_binary, vpcd_installed

    if pcscd_binary() is None:
        pytest.skip("pcscd is not installed (Debian package pcscd)")
    if not vpcd_installed():
        pytest.skip("the vpcd reader driver is not installed (Debian package vsmartcard-vpcd)")
    log: Path = tmp_path_factory.mktemp("pcscd") / "pcscd.log"
    handle = ensure_pcscd(log_path=log)
    yield handle
    handle.stop()


@pytest.fixture
def vpcd_card(pcscd: object) -> Iterator[Callable[..., tuple[object, str]]]:
    """Factory: ``client, reader_name = vpcd_card(virtual_card, slot=0)``."""
    from biostation_drivers.simulated.vcard.pcscd import vpcd_slot
    from biostation_drivers.simulated.vcard.vpcd import VpcdClient

    clients = []

    def plug(card: object, slot: int = 0, reinsert_after_s: float | None = None) -> tuple[object, str]:
        name, port = vpcd_slot(slot)
        _wait_presence(name, False)  # a card unplugged by the previous test must be gone first
        client = VpcdClient(card, port=port, reinsert_after_s=reinsert_after_s).start()  # type: ignore[arg-type]
        clients.append((client, name))
        _wait_presence(name, True)
        return client, name

    yield plug
    for c, name in clients:
        c.stop()
        _wait_presence(name, False)


def _wait_presence(reader: str, present: bool, timeout_s: float = 5.0) -> None:
    """Wait until pcscd reports the card in ``reader`` as ``present``, then let it settle."""
    import time

    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            hr, states = scard.SCardGetStatusChange(ctx, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
            if hr == scard.SCARD_S_SUCCESS and bool(states[0][1] & scard.SCARD_STATE_PRESENT) == present:
                break
            time.sleep(0.05)
        time.sleep(0.1)
    finally:
        scard.SCardReleaseContext(ctx)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (scripts/install test installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def sign_in() -> Callable[[object, str, str], None]:
    """``sign_in(page, base_url, token)``: open the operator page and sign in."""

    def go(page: object, base: str, token: str) -> None:
        page.goto(base + "/")  # type: ignore[attr-defined]
        page.fill("input[name=token]", token)  # type: ignore[attr-defined]
        page.click("button[type=submit]")  # type: ignore[attr-defined]
        page.wait_for_selector("#health.ok", timeout=15000)  # type: ignore[attr-defined]

    return go
