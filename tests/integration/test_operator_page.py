"""The operator page in real headless Chromium (Debian's), driven by Playwright, against the real daemon."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_operator_signs_in_sees_devices_captures_and_sees_events(station_server, browser, tmp_path):
    _, base, data, _ = station_server
    token = (data / "token").read_text().strip()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    resp = page.goto(base + "/")
    assert resp.status == 401  # not signed in: the sign-in form
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "wrong token" in page.content()
    page.goto(base + "/")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("#health.ok", timeout=15000)
    assert page.locator("#tab-desk").is_visible()  # the desk first; the device console is a tab
    page.click(".tabs [data-tab=devices]")

    # the three simulated devices, with their class and state
    page.wait_for_selector("article.card[data-cls=scanner]")
    assert page.locator("article.card").count() == 3
    scanner = page.locator("article.card[data-cls=scanner]")
    assert "simulated" in scanner.inner_text()

    scanner.locator("[data-role=capture]").click()
    page.wait_for_selector("article.card[data-cls=scanner] [data-role=view] img", timeout=20000)
    meta = scanner.locator("[data-role=meta]").inner_text()
    assert "dpi" in meta and "×" in meta and "NFIQ 2" in meta
    page.wait_for_selector("#log li[data-kind='capture.done']", timeout=10000)

    camera = page.locator("article.card[data-cls=camera]")
    camera.locator("[data-role=live]").click()
    page.wait_for_selector("article.card[data-cls=camera] [data-role=view] img", timeout=20000)
    camera.locator("[data-role=live]").click()

    # the reader is watched: its (blank) card shows up
    reader = page.locator("article.card[data-cls=card_reader] .presence")
    reader.wait_for(state="visible", timeout=10000)
    assert reader.inner_text() == "card present"

    # the chip of the virtual CCCD card: a wrong CAN is refused with a reason, the right one reads
    card = page.locator("article.card[data-cls=card_reader]")
    can = card.locator("[data-role=hint]").inner_text().split("CAN ")[1].strip()
    card.locator("[data-role=can]").fill("999999")
    card.locator("[data-role=read]").click()
    page.wait_for_selector("#toast:has-text('AccessDeniedError')", timeout=20000)
    card.locator("[data-role=can]").fill(can)
    card.locator("[data-role=read]").click()
    page.wait_for_selector("article.card[data-cls=card_reader] [data-role=name]", timeout=20000)
    assert card.locator("[data-role=name]").inner_text() == "Nguyễn Văn An"
    assert card.locator("[data-role=pa]").inner_text() == "verified"
    page.screenshot(path=str(tmp_path / "operator-card.png"), full_page=True)

    # Vietnamese labels
    page.click("#lang")
    assert page.locator("[data-role=capture]").inner_text() == "Lấy vân tay"

    # a fault: the scanner is unplugged; the page shows an error, logs it and drops the device
    import httpx

    scanner_id = httpx.get(base + "/v1/devices", headers={"Authorization": f"Bearer {token}"}).json()
    scanner_id = next(d["device_id"] for d in scanner_id if d["device_class"] == "scanner")
    httpx.post(f"{base}/v1/devices/{scanner_id}/simulate", json={"fault": "unplug"},
               headers={"Authorization": f"Bearer {token}"})
    page.wait_for_selector("#log li[data-kind='device.removed']", timeout=10000)
    # (no wait_for_function: evaluating a string is what the page's CSP forbids)
    page.locator("article.card").nth(2).wait_for(state="detached", timeout=10000)
    assert page.locator("article.card").count() == 2
    page.screenshot(path=str(tmp_path / "operator.png"), full_page=True)

    # signing out ends the session: the page's next call gets 401 and the sign-in form comes back
    page.click("#signout")
    page.wait_for_selector("input[name=token]", timeout=10000)
    assert httpx.get(base + "/v1/devices", cookies={c["name"]: c["value"] for c in page.context.cookies()}
                     ).status_code == 401
    assert errors == []


def test_api_docs_render_from_the_station_alone(station_server, browser):
    """Swagger UI comes from the station (no CDN: desks often have no network) and runs under its CSP."""
    _, base, data, _ = station_server
    token = (data / "token").read_text().strip()
    page = browser.new_page()
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(base + "/docs")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20000)
    assert page.locator(".swagger-ui .opblock").count() >= 8
    assert requests and all(u.startswith(base) for u in requests), requests
    assert not [c for c in console if "Content Security Policy" in c], console
