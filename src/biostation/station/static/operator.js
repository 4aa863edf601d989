"use strict";
const T = {
  en: { connecting: "connecting…", sign_out: "Sign out", online: "station online", offline: "station offline", events: "Events",
        capture: "Capture", capturing: "Capturing… place a finger", live: "Live", stop: "Stop",
        card_present: "card present", no_card: "no card", finger_on: "finger on", finger_off: "no finger",
        no_image: "no image yet", scanner: "Fingerprint scanner", camera: "Camera", card_reader: "Card reader",
        simulated: "simulated", gone: "disconnected", other: "Tiếng Việt",
        portrait: "Capture portrait", portrait_wait: "Look at the camera…", passed: "all checks passed",
        failed: "failed", read_card: "Read card", reading: "Reading…", can: "CAN (6 digits)",
        holder: "Holder", id_number: "ID number", born: "Born", pa: "Passive authentication",
        aa: "Active authentication", vnid: "ID number checks", quality: "NFIQ 2 quality" },
  vi: { connecting: "đang kết nối…", sign_out: "Đăng xuất", online: "trạm hoạt động", offline: "mất kết nối trạm", events: "Sự kiện",
        capture: "Lấy vân tay", capturing: "Đang lấy… đặt ngón tay lên", live: "Xem trực tiếp", stop: "Dừng",
        card_present: "có thẻ", no_card: "chưa có thẻ", finger_on: "có ngón tay", finger_off: "chưa có ngón tay",
        no_image: "chưa có ảnh", scanner: "Máy quét vân tay", camera: "Camera", card_reader: "Đầu đọc thẻ",
        simulated: "mô phỏng", gone: "đã ngắt kết nối", other: "English",
        portrait: "Chụp ảnh chân dung", portrait_wait: "Nhìn thẳng vào camera…", passed: "đạt mọi tiêu chí",
        failed: "không đạt", read_card: "Đọc thẻ", reading: "Đang đọc…", can: "Số CAN (6 chữ số)",
        holder: "Chủ thẻ", id_number: "Số định danh", born: "Ngày sinh", pa: "Xác thực thụ động",
        aa: "Xác thực chủ động", vnid: "Kiểm tra số định danh", quality: "Chất lượng NFIQ 2" },
};
let lang = localStorage.getItem("biostation.lang") || "en";
const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;
const $ = (sel, el = document) => el.querySelector(sel);
const devices = new Map();

function toast(msg) {
  const el = $("#toast"); el.textContent = msg; el.style.display = "block";
  clearTimeout(toast.timer); toast.timer = setTimeout(() => (el.style.display = "none"), 6000);
}

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts,
    headers: { "Content-Type": "application/json", ...(opts.headers || {}) } });
  if (r.status === 401) { location.href = "/"; throw new Error("signed out"); }
  if (!r.ok) {
    let reason = r.statusText;
    try { const b = await r.json(); reason = `${b.error}: ${b.reason}`; } catch (_) {}
    throw new Error(reason);
  }
  return r;
}

function applyLang() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  $("#lang").textContent = t("other");
}

function stateClass(s) { return s === "gone" ? "bad" : s === "busy" ? "busy" : "ok"; }

function renderDevice(d) {
  let el = document.getElementById("dev-" + d.device_id);
  if (!el) {
    el = document.createElement("article");
    el.className = "card"; el.id = "dev-" + d.device_id; el.dataset.cls = d.device_class;
    el.innerHTML = `<h2></h2><div class="sub"></div><div class="row"><span class="pill state"></span>
      <span class="pill sim" hidden></span><span class="pill presence" hidden></span></div><div class="body"></div>`;
    $("#devices").appendChild(el);
    const body = $(".body", el);
    if (d.device_class === "scanner") {
      body.innerHTML = `<div class="view" data-role="view"><span data-i18n="no_image"></span></div>
        <div class="row"><button data-role="capture" data-i18n="capture"></button><span class="meta" data-role="meta"></span></div>`;
      $("[data-role=capture]", el).onclick = () => capture(d.device_id, el);
    } else if (d.device_class === "camera") {
      body.innerHTML = `<div class="view" data-role="view"><span data-i18n="no_image"></span></div>
        <div class="row"><button data-role="live" data-i18n="live"></button>
        <button class="secondary" data-role="portrait" data-i18n="portrait"></button></div>
        <ul class="checks" data-role="checks"></ul>`;
      $("[data-role=live]", el).onclick = () => toggleLive(d.device_id, el);
      $("[data-role=portrait]", el).onclick = () => portrait(d.device_id, el);
    } else if (d.device_class === "card_reader") {
      body.innerHTML = `<div class="row"><input data-role="can" inputmode="numeric" maxlength="6" size="8"
        autocomplete="off" aria-label="CAN"><button data-role="read" data-i18n="read_card"></button></div>
        <div class="meta" data-role="hint"></div><div data-role="doc"></div>`;
      $("[data-role=can]", el).placeholder = t("can");
      $("[data-role=read]", el).onclick = () => readCard(d.device_id, el);
    }
  }
  $("h2", el).textContent = d.name;
  $(".sub", el).textContent = `${t(d.device_class)} · ${d.driver} · ${d.device_id}`;
  const st = $(".state", el); st.textContent = d.state === "gone" ? t("gone") : d.state;
  st.className = "pill state " + stateClass(d.state);
  const sim = $(".pill.sim", el); sim.hidden = !d.simulated; sim.textContent = t("simulated");
  if (d.device_class === "card_reader" && d.details && d.details.card_present != null) {
    const pres = $(".presence", el); pres.hidden = false;
    pres.textContent = t(d.details.card_present ? "card_present" : "no_card");
  }
  el.querySelectorAll("[data-i18n]").forEach((x) => (x.textContent = t(x.dataset.i18n)));
  if (d.device_class === "card_reader" && d.details && d.details.can) {
    $("[data-role=hint]", el).textContent = `${d.details.card}: CAN ${d.details.can}`;
  }
  devices.set(d.device_id, d);
}

async function refreshDevices() {
  try {
    const list = await (await api("/v1/devices")).json();
    const ids = new Set(list.map((d) => d.device_id));
    list.forEach(renderDevice);
    for (const id of [...devices.keys()]) if (!ids.has(id)) {
      const el = document.getElementById("dev-" + id); if (el) el.remove(); devices.delete(id);
    }
  } catch (e) { toast(e.message); }
}

async function capture(id, el) {
  const btn = $("[data-role=capture]", el); btn.disabled = true; btn.textContent = t("capturing");
  try {
    const b = await (await api(`/v1/devices/${encodeURIComponent(id)}/capture`,
      { method: "POST", body: JSON.stringify({ kind: "flat" }) })).json();
    $("[data-role=view]", el).innerHTML = `<img alt="fingerprint" src="data:image/png;base64,${b.image_png}">`;
    const q = b.nfiq2 == null ? "" : ` · ${t("quality")} ${b.nfiq2}`;
    $("[data-role=meta]", el).textContent = `${b.width}×${b.height} px · ${b.dpi} dpi · ${b.duration_s.toFixed(2)} s${q}`;
    $("[data-role=meta]", el).dataset.nfiq2 = b.nfiq2 == null ? "" : String(b.nfiq2);
  } catch (e) { toast(e.message); }
  finally { btn.disabled = false; btn.textContent = t("capture"); }
}

function esc(x) { const d = document.createElement("span"); d.textContent = x == null ? "" : String(x); return d.innerHTML; }

async function portrait(id, el) {
  const btn = $("[data-role=portrait]", el); btn.disabled = true; btn.textContent = t("portrait_wait");
  try {
    const b = await (await api(`/v1/devices/${encodeURIComponent(id)}/portrait`,
      { method: "POST", body: JSON.stringify({ timeout_s: 10 }) })).json();
    if (b.frame_jpeg) $("[data-role=view]", el).innerHTML = `<img alt="portrait" src="data:image/jpeg;base64,${b.frame_jpeg}">`;
    const list = $("[data-role=checks]", el);
    list.dataset.status = b.status;
    const failed = (b.checks || []).filter((c) => c.status === "fail");
    list.innerHTML = b.passed ? `<li class="okline">${esc(t("passed"))}</li>` :
      failed.map((c) => `<li class="error"><b>${esc(c.name)}</b>: ${esc(lang === "vi" ? c.reason_vi : c.reason_en)}</li>`).join("");
  } catch (e) { toast(e.message); }
  finally { btn.disabled = false; btn.textContent = t("portrait"); }
}

async function readCard(id, el) {
  const can = $("[data-role=can]", el).value.trim();
  const btn = $("[data-role=read]", el); btn.disabled = true; btn.textContent = t("reading");
  const doc = $("[data-role=doc]", el); doc.innerHTML = "";
  try {
    const b = await (await api(`/v1/devices/${encodeURIComponent(id)}/card/read`,
      { method: "POST", body: JSON.stringify({ can }) })).json();
    const h = b.holder || {}, dg13 = h.dg13 || {}, mrz = h.mrz || {};
    const name = dg13.full_name || [mrz.surname, mrz.given_names].filter(Boolean).join(" ");
    const pa = (b.checks.passive_authentication || {}).status || "—";
    const aa = typeof b.checks.active_authentication === "object" ? (b.checks.active_authentication.ok ? "ok" : t("failed")) : b.checks.active_authentication;
    const vn = b.checks.vn_id ? (b.checks.vn_id.ok ? "ok" : t("failed")) : "—";
    const face = (b.faces || []).find((f) => f.format === "jpg" || f.format === "jpeg");
    doc.innerHTML = `<div class="doc">${face ? `<img alt="chip portrait" src="data:image/jpeg;base64,${face.image_base64}">` : ""}
      <dl><dt>${esc(t("holder"))}</dt><dd data-role="name">${esc(name)}</dd>
      <dt>${esc(t("id_number"))}</dt><dd>${esc(dg13.id_number || mrz.document_number)}</dd>
      <dt>${esc(t("born"))}</dt><dd>${esc(dg13.date_of_birth || mrz.date_of_birth)}</dd>
      <dt>${esc(t("pa"))}</dt><dd data-role="pa" class="${pa === "verified" ? "okline" : "error"}">${esc(pa)}</dd>
      <dt>${esc(t("aa"))}</dt><dd>${esc(aa)}</dd><dt>${esc(t("vnid"))}</dt><dd>${esc(vn)}</dd></dl></div>`;
  } catch (e) { toast(e.message); }
  finally { btn.disabled = false; btn.textContent = t("read_card"); }
}

const live = new Map();
async function toggleLive(id, el) {
  const btn = $("[data-role=live]", el);
  if (live.has(id)) { live.delete(id); btn.textContent = t("live"); btn.dataset.i18n = "live"; return; }
  live.set(id, true); btn.textContent = t("stop"); btn.dataset.i18n = "stop";
  const view = $("[data-role=view]", el);
  while (live.has(id)) {
    try {
      const blob = await (await api(`/v1/devices/${encodeURIComponent(id)}/frame`)).blob();
      const url = URL.createObjectURL(blob);
      const img = view.querySelector("img") || Object.assign(document.createElement("img"), { alt: "camera" });
      const old = img.src; img.src = url; if (old) URL.revokeObjectURL(old);
      if (!img.parentNode) { view.innerHTML = ""; view.appendChild(img); }
    } catch (e) { toast(e.message); live.delete(id); btn.textContent = t("live"); }
    await new Promise((r) => setTimeout(r, 150));
  }
}

function logEvent(ev) {
  if (ev.kind === "device.state") return;  // busy/idle of every operation: not what an operator reads
  const li = document.createElement("li");
  const time = new Date(ev.timestamp * 1000).toLocaleTimeString();
  const extra = ev.data && ev.data.reason ? ` — ${ev.data.reason}` : ev.data && ev.data.state ? ` → ${ev.data.state}` : "";
  li.innerHTML = `<span class="t"></span> <b></b> <span></span>`;
  li.children[0].textContent = time; li.children[1].textContent = ev.kind;
  li.children[2].textContent = ev.device_id + extra;
  if (ev.kind.endsWith(".error") || ev.kind === "device.removed") li.className = "error";
  li.dataset.kind = ev.kind;
  const log = $("#log"); log.prepend(li); while (log.children.length > 80) log.lastChild.remove();
}

function onEvent(ev) {
  logEvent(ev);
  const el = document.getElementById("dev-" + ev.device_id);
  const pres = el && $(".presence", el);
  if (ev.kind === "device.added" || ev.kind === "device.removed") refreshDevices();
  else if (ev.kind === "device.state" && devices.has(ev.device_id)) renderDevice({ ...devices.get(ev.device_id), state: ev.data.state });
  else if (pres && (ev.kind === "finger.on" || ev.kind === "finger.off")) {
    pres.hidden = false; pres.textContent = t(ev.kind === "finger.on" ? "finger_on" : "finger_off");
  } else if (pres && (ev.kind === "card.inserted" || ev.kind === "card.removed")) {
    pres.hidden = false; pres.textContent = t(ev.kind === "card.inserted" ? "card_present" : "no_card");
  }
}

function connectEvents() {
  const es = new EventSource("/v1/events");
  const kinds = ["device.added", "device.removed", "device.state", "finger.on", "finger.off", "card.inserted",
                 "card.removed", "capture.started", "capture.done", "capture.error"];
  kinds.forEach((k) => es.addEventListener(k, (m) => onEvent(JSON.parse(m.data))));
  es.onopen = () => { const h = $("#health"); h.className = "pill ok"; h.dataset.i18n = "online"; h.textContent = t("online"); refreshDevices(); };
  es.onerror = () => { const h = $("#health"); h.className = "pill bad"; h.dataset.i18n = "offline"; h.textContent = t("offline"); };
}

$("#lang").onclick = () => {
  lang = lang === "en" ? "vi" : "en"; localStorage.setItem("biostation.lang", lang); applyLang(); refreshDevices();
  if (window.deskRender) window.deskRender();
};
document.querySelectorAll(".tabs [data-tab]").forEach((b) => (b.onclick = () => {
  document.querySelectorAll(".tabs [data-tab]").forEach((x) => x.classList.toggle("active", x === b));
  for (const name of ["desk", "verify", "devices"]) $("#tab-" + name).hidden = b.dataset.tab !== name;
}));
applyLang();
connectEvents();
refreshDevices();
