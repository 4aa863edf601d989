// The enrollment desk: applicant queue, step-by-step enrollment, live scanner preview with a
// quality meter per finger, portrait checks with reasons, duplicate search, review and confirm.
// Everything goes through /v1/enrollments (the workflow decides; this page only shows).
"use strict";

const DT = {
  en: {
    desk: "Enrollment desk", devices: "Devices", queue: "Applicants", new_applicant: "New applicant",
    step_demographics: "Demographics", step_fingers: "Fingerprints", step_portrait: "Portrait",
    step_duplicates: "Duplicate check", step_review: "Review", step_confirmed: "Confirmed", step_cancelled: "Cancelled",
    id_number: "Personal ID number (12 digits)", surname: "Surname", given_names: "Given names", sex: "Sex",
    date_of_birth: "Date of birth", place_of_birth: "Place of birth", address: "Address", save: "Save",
    male: "Male", female: "Female", capture: "Capture", recapture: "Again", capturing: "Place the finger(s)…",
    amputated: "Amputated (XX)", bandaged: "Bandaged (UP)", quality: "Quality", live: "Live preview",
    slap_13: "Right four fingers", slap_14: "Left four fingers", slap_15: "Both thumbs",
    f1: "Right thumb", f2: "Right index", f3: "Right middle", f4: "Right ring", f5: "Right little",
    f6: "Left thumb", f7: "Left index", f8: "Left middle", f9: "Left ring", f10: "Left little",
    sequence_ok: "Sequence check passed: slaps and singles agree.", sequence_bad: "Sequence check failed:",
    not_yet: "not captured", captured: "captured", low_quality: "low quality", failed: "failed", skipped: "skipped",
    portrait_capture: "Capture from camera", portrait_upload: "Upload photo", passed: "every ICAO check passed",
    search: "Search duplicates", no_duplicates: "No earlier applicant matches.", duplicates_found: "Possible duplicates:",
    clear_reason: "Why these are not the applicant", confirm: "Confirm enrollment", cancel: "Cancel session",
    cancel_reason: "Reason for cancelling", confirmed_msg: "Enrollment confirmed; the record is queued for upload.",
    outbox: "Outbox", missing: "Still needed", fingers_word: "fingers", no_scanner: "no scanner attached",
    no_camera: "no camera attached", searched: "fingers searched", gallery: "gallery",
    verify_tab: "Verify a citizen", verify_go: "Verify", verify_help: "Place the citizen's card on the reader, type its CAN, then let the camera and the scanner take the live face and the index fingers.",
    verifying: "Reading the chip, then the live face and fingers…", verified: "VERIFIED", not_verified: "NOT VERIFIED",
    retake: "TAKE THE PORTRAIT AGAIN", document: "Document", pa: "Passive authentication", ta: "Terminal authentication",
    face: "Face", finger: "Finger", score: "score", threshold: "threshold", no_reader: "no card reader attached",
  },
  vi: {
    desk: "Bàn thu nhận", devices: "Thiết bị", queue: "Người đăng ký", new_applicant: "Người đăng ký mới",
    step_demographics: "Thông tin nhân thân", step_fingers: "Vân tay", step_portrait: "Ảnh chân dung",
    step_duplicates: "Kiểm tra trùng", step_review: "Xem lại", step_confirmed: "Đã xác nhận", step_cancelled: "Đã hủy",
    id_number: "Số định danh cá nhân (12 chữ số)", surname: "Họ", given_names: "Chữ đệm và tên", sex: "Giới tính",
    date_of_birth: "Ngày sinh", place_of_birth: "Nơi sinh", address: "Nơi thường trú", save: "Lưu",
    male: "Nam", female: "Nữ", capture: "Lấy", recapture: "Lấy lại", capturing: "Đặt ngón tay lên…",
    amputated: "Cụt (XX)", bandaged: "Băng bó (UP)", quality: "Chất lượng", live: "Xem trực tiếp",
    slap_13: "Bốn ngón tay phải", slap_14: "Bốn ngón tay trái", slap_15: "Hai ngón cái",
    f1: "Ngón cái phải", f2: "Ngón trỏ phải", f3: "Ngón giữa phải", f4: "Ngón áp út phải", f5: "Ngón út phải",
    f6: "Ngón cái trái", f7: "Ngón trỏ trái", f8: "Ngón giữa trái", f9: "Ngón áp út trái", f10: "Ngón út trái",
    sequence_ok: "Kiểm tra thứ tự đạt: ảnh bốn ngón và từng ngón khớp nhau.", sequence_bad: "Kiểm tra thứ tự không đạt:",
    not_yet: "chưa lấy", captured: "đã lấy", low_quality: "chất lượng thấp", failed: "không lấy được", skipped: "bỏ qua",
    portrait_capture: "Chụp từ camera", portrait_upload: "Tải ảnh lên", passed: "đạt mọi tiêu chí ICAO",
    search: "Tìm trùng", no_duplicates: "Không trùng với người đăng ký trước.", duplicates_found: "Có thể trùng:",
    clear_reason: "Lý do không phải cùng một người", confirm: "Xác nhận thu nhận", cancel: "Hủy phiên",
    cancel_reason: "Lý do hủy", confirmed_msg: "Đã xác nhận; hồ sơ đang chờ gửi về trung tâm.",
    outbox: "Hàng đợi gửi", missing: "Còn thiếu", fingers_word: "ngón", no_scanner: "chưa có máy quét",
    no_camera: "chưa có camera", searched: "ngón đã tìm", gallery: "cơ sở dữ liệu",
    verify_tab: "Xác thực công dân", verify_go: "Xác thực", verify_help: "Đặt thẻ của công dân lên đầu đọc, nhập số CAN, rồi để camera và máy quét lấy khuôn mặt và hai ngón trỏ.",
    verifying: "Đang đọc chip, rồi khuôn mặt và vân tay…", verified: "ĐÃ XÁC THỰC", not_verified: "KHÔNG XÁC THỰC",
    retake: "CHỤP LẠI ẢNH CHÂN DUNG", document: "Giấy tờ", pa: "Xác thực thụ động", ta: "Xác thực thiết bị đầu cuối",
    face: "Khuôn mặt", finger: "Ngón", score: "điểm", threshold: "ngưỡng", no_reader: "chưa có đầu đọc thẻ",
  },
};

const desk = { sid: null, state: null, scanner: null, camera: null, busy: false };
const curLang = () => (typeof lang !== "undefined" ? lang : "en");  // the page's language (operator.js)
const dt = (k) => (DT[curLang()] || DT.en)[k] || DT.en[k] || k;
const q = (sel, el = document) => el.querySelector(sel);
const escd = (x) => { const d = document.createElement("span"); d.textContent = x == null ? "" : String(x); return d.innerHTML; };
const STEPS = ["demographics", "fingers", "portrait", "duplicates", "review"];

async function deskApi(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts,
    headers: opts.raw ? (opts.headers || {}) : { "Content-Type": "application/json", ...(opts.headers || {}) } });
  if (r.status === 401) { location.href = "/"; throw new Error("signed out"); }
  if (!r.ok) {
    let reason = r.statusText;
    try { const b = await r.json(); reason = `${b.error}: ${b.reason}`; } catch (_) {}
    throw new Error(reason);
  }
  return r.status === 204 ? null : r;
}

function deskToast(msg) { if (window.toast) window.toast(msg); else alert(msg); }

async function pickDevices() {
  const list = await (await deskApi("/v1/devices")).json();
  desk.reader = (list.find((d) => d.device_class === "card_reader" && d.state !== "gone") || {}).device_id || null;
  desk.scanner = (list.find((d) => d.device_class === "scanner" && d.state !== "gone") || {}).device_id || null;
  desk.camera = (list.find((d) => d.device_class === "camera" && d.state !== "gone") || {}).device_id || null;
}

async function loadQueue() {
  const list = await (await deskApi("/v1/enrollments")).json();
  const ul = q("#queue");
  ul.innerHTML = "";
  for (const s of list) {
    const li = document.createElement("li");
    li.className = "qitem" + (s.session_id === desk.sid ? " current" : "");
    li.dataset.sid = s.session_id;
    li.innerHTML = `<b>${escd(s.name || "—")}</b><span class="pill step-${escd(s.step)}">${escd(dt("step_" + s.step))}</span>`;
    li.onclick = () => openSession(s.session_id);
    ul.appendChild(li);
  }
  try {
    const o = await (await deskApi("/v1/outbox")).json();
    q("#outbox").textContent = `${dt("outbox")}: ${o.queued || 0} ⇡ · ${o.acked || 0} ✓`;
  } catch (_) { q("#outbox").textContent = ""; }
}

async function newApplicant() {
  const s = await (await deskApi("/v1/enrollments", { method: "POST", body: JSON.stringify({ operator: "desk" }) })).json();
  if (desk.scanner) {  // a simulated scanner serves the next simulated person
    try { await deskApi(`/v1/devices/${encodeURIComponent(desk.scanner)}/simulate`,
      { method: "POST", body: JSON.stringify({ fault: "next_applicant" }) }); } catch (_) {}
  }
  await openSession(s.session_id, s);
}

async function openSession(sid, state) {
  desk.sid = sid;
  desk.typed = { sid, values: {} };
  desk.state = state || await (await deskApi(`/v1/enrollments/${sid}`)).json();
  render();
  loadQueue();
}

function render() {
  const st = desk.state;
  const box = q("#enrollment");
  const form = q("#demo");
  if (form && desk.typed && desk.typed.sid === (st && st.session_id)) {
    desk.typed.values = Object.fromEntries(new FormData(form).entries());
  }
  if (!st) { box.innerHTML = `<p class="meta">${escd(dt("queue"))}…</p>`; return; }
  const cur = st.step;
  if (desk.lastStep !== st.session_id + cur) { desk.lastStep = st.session_id + cur; loadQueue().catch(() => {}); }
  if (cur === "demographics") {
    // the form on screen already shows this session, these demographics, this language: building
    // it again would replace the button under a click in flight, and that click would be lost
    const key = JSON.stringify([st.session_id, st.demographics || null, curLang()]);
    if (desk.demoKey === key && q("#demo")) return;
    desk.demoKey = key;
  } else desk.demoKey = null;
  box.innerHTML = `<ol class="stepper">${STEPS.map((s, i) => `<li class="${s === cur ? "now" : (STEPS.indexOf(cur) > i || cur === "confirmed") ? "done" : ""}"
      data-step="${s}">${i + 1}. ${escd(dt("step_" + s))}</li>`).join("")}</ol>
    <div id="stepbody"></div>`;
  const body = q("#stepbody");
  if (cur === "confirmed" || cur === "cancelled") {
    body.innerHTML = `<p class="${cur === "confirmed" ? "okline" : "error"}" data-role="final">${escd(cur === "confirmed" ? dt("confirmed_msg") : dt("step_cancelled"))}</p>`;
    body.appendChild(reviewTable(st));
    return;
  }
  if (cur === "demographics") renderDemographics(body, st);
  else if (cur === "fingers") renderFingers(body, st);
  else if (cur === "portrait") renderPortrait(body, st);
  else if (cur === "duplicates") renderDuplicates(body, st);
  else renderReview(body, st);
}

function renderDemographics(body, st) {
  // what the operator has typed survives a re-render (language switch, queue refresh)
  const typed = desk.typed && desk.typed.sid === st.session_id ? desk.typed.values : {};
  const d = { ...(st.demographics || {}), ...typed };
  const field = (k, extra = "") => `<label>${escd(dt(k))}<input name="${k}" value="${escd(d[k] || "")}" ${extra}></label>`;
  body.innerHTML = `<form id="demo" class="form">
      ${field("id_number", 'inputmode="numeric" maxlength="12" required')}
      ${field("surname", 'maxlength="100" required')}${field("given_names", 'maxlength="100" required')}
      <label>${escd(dt("sex"))}<select name="sex"><option value="M">${escd(dt("male"))}</option>
        <option value="F"${d.sex === "F" ? " selected" : ""}>${escd(dt("female"))}</option></select></label>
      ${field("date_of_birth", 'type="date" required')}${field("place_of_birth", 'maxlength="200"')}
      ${field("address", 'maxlength="300"')}
      <div><button type="submit">${escd(dt("save"))}</button></div></form>`;
  q("#demo").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target).entries());
    for (const k of Object.keys(f)) if (!f[k]) delete f[k];
    try {
      desk.state = await (await deskApi(`/v1/enrollments/${desk.sid}/demographics`, { method: "PUT", body: JSON.stringify(f) })).json();
      render(); loadQueue();
    } catch (e) { deskToast(e.message); }
  };
}

function qualityMeter(v) {
  if (v == null) return `<div class="meter"><span style="width:0"></span></div>`;
  const cls = v >= 40 ? "good" : v >= 20 ? "fair" : "poor";
  return `<div class="meter ${cls}" title="NFIQ 2 ${v}"><span style="width:${Math.max(3, v)}%"></span></div>`;
}

function tile(pos, rec, exc, isSlap) {
  const name = dt(isSlap ? "slap_" + pos : "f" + pos);
  const status = exc ? "skipped" : rec ? (isSlap && rec.stale ? "failed" : rec.status) : "not_yet";
  const img = rec ? `<img alt="${escd(name)}" src="/v1/enrollments/${desk.sid}/images/${encodeURIComponent(rec.image)}">` : "";
  const q2 = rec && rec.nfiq2 != null ? rec.nfiq2 : null;
  return `<div class="tile ${isSlap ? "slap" : ""}" data-pos="${pos}" data-status="${status}">
      <div class="tname">${escd(name)}</div><div class="thumb">${img}</div>
      ${qualityMeter(q2)}<div class="meta">${escd(dt(status))}${exc ? " · " + escd(exc) : ""}${q2 != null ? ` · ${escd(dt("quality"))} ${q2}` : ""}</div>
      <div class="row"><button data-act="capture" data-pos="${pos}" ${desk.scanner ? "" : "disabled"}>${escd(dt(rec ? "recapture" : "capture"))}</button>
      ${isSlap ? "" : `<select data-act="exception" data-pos="${pos}" aria-label="exception"><option value="">—</option>
        <option value="XX"${exc === "XX" ? " selected" : ""}>${escd(dt("amputated"))}</option>
        <option value="UP"${exc === "UP" ? " selected" : ""}>${escd(dt("bandaged"))}</option></select>`}</div></div>`;
}

function renderFingers(body, st) {
  const seq = st.sequence;
  const seqHtml = !seq ? "" : seq.ok ? `<p class="okline" data-role="sequence">${escd(dt("sequence_ok"))}</p>` :
    `<div class="error" data-role="sequence">${escd(dt("sequence_bad"))}<ul>${seq.issues.filter((i) => i.error)
      .map((i) => `<li>${escd(i.kind)}: ${escd(i.detail)}</li>`).join("")}</ul></div>`;
  const miss = st.missing || { singles: [], slaps: [] };
  body.innerHTML = `<div class="fingers">
      <div class="live"><div class="tname">${escd(dt("live"))}</div><div class="view" id="preview"><span class="meta">${escd(desk.scanner ? "" : dt("no_scanner"))}</span></div>
        ${qualityMeter(null)}<div class="meta" id="preview-q"></div></div>
      <div class="tiles slaps">${[13, 14, 15].map((p) => tile(p, st.slaps[String(p)], null, true)).join("")}</div>
      <div class="tiles">${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((p) => tile(p, st.fingers[String(p)], st.exceptions[String(p)], false)).join("")}</div>
    </div>${seqHtml}
    <p class="meta" data-role="missing">${escd(dt("missing"))}: ${[...miss.slaps.map((p) => dt("slap_" + p)), ...miss.singles.map((p) => dt("f" + p))].map(escd).join(", ") || "—"}</p>`;
  body.querySelectorAll("[data-act=capture]").forEach((b) => (b.onclick = () => captureFinger(Number(b.dataset.pos), b)));
  body.querySelectorAll("[data-act=exception]").forEach((s) => (s.onchange = async () => {
    if (!s.value) return;
    try {
      desk.state = await (await deskApi(`/v1/enrollments/${desk.sid}/fingers/${s.dataset.pos}/exception`,
        { method: "POST", body: JSON.stringify({ reason: s.value }) })).json();
      render();
    } catch (e) { deskToast(e.message); }
  }));
}

async function captureFinger(pos, btn) {
  if (desk.busy) return;
  desk.busy = true;
  document.querySelectorAll("[data-act=capture]").forEach((b) => (b.disabled = true));
  btn.textContent = dt("capturing");
  let polling = true;
  const poll = async () => {
    while (polling) {
      try {
        const r = await fetch(`/v1/enrollments/${desk.sid}/preview`, { credentials: "same-origin" });
        if (r.status === 200) {
          const blob = await r.blob();
          const url = URL.createObjectURL(blob);
          const view = q("#preview");
          if (view) {
            const img = view.querySelector("img") || Object.assign(document.createElement("img"), { alt: "preview" });
            const old = img.src; img.src = url; if (old) URL.revokeObjectURL(old);
            if (!img.parentNode) { view.innerHTML = ""; view.appendChild(img); }
            const qv = r.headers.get("X-Quality");
            const meter = view.parentNode.querySelector(".meter");
            if (meter) meter.outerHTML = qualityMeter(qv === "" || qv == null ? null : Number(qv));
            q("#preview-q").textContent = qv ? `NFIQ 2 ${qv}` : "";
          }
        }
      } catch (_) {}
      await new Promise((res) => setTimeout(res, 200));
    }
  };
  poll();
  try {
    const b = await (await deskApi(`/v1/enrollments/${desk.sid}/fingers/${pos}/capture`,
      { method: "POST", body: JSON.stringify({ device_id: desk.scanner }) })).json();
    desk.state = b.session;
    if (!b.capture.accepted) deskToast(`${dt(pos > 10 ? "slap_" + pos : "f" + pos)}: ${b.capture.reason || b.capture.status}`);
  } catch (e) { deskToast(e.message); }
  finally { polling = false; desk.busy = false; render(); loadQueue().catch(() => {}); }
}

function checksList(report) {
  const lg = curLang();
  const failed = (report.checks || []).filter((c) => c.status === "fail");
  return report.passed ? `<li class="okline">${escd(dt("passed"))}</li>` :
    failed.map((c) => `<li class="error"><b>${escd(c.name)}</b>: ${escd(lg === "vi" ? c.reason_vi : c.reason_en)}</li>`).join("");
}

function renderPortrait(body, st) {
  body.innerHTML = `<div class="row"><button id="pcap" ${desk.camera ? "" : "disabled"}>${escd(dt("portrait_capture"))}</button>
      <label class="upload">${escd(dt("portrait_upload"))} <input type="file" id="pfile" accept="image/jpeg,image/png,image/jp2"></label></div>
      <div class="portrait"><div class="view" id="pview"><span class="meta">${escd(desk.camera ? "" : dt("no_camera"))}</span></div>
      <ul class="checks" id="pchecks"></ul></div>`;
  const show = (b) => {
    q("#pchecks").innerHTML = checksList(b.portrait.report || { checks: [] });
    if (b.portrait.accepted) { desk.state = b.session; setTimeout(render, 600); }
  };
  q("#pcap").onclick = async () => {
    q("#pcap").disabled = true;
    try {
      show(await (await deskApi(`/v1/enrollments/${desk.sid}/portrait/capture`,
        { method: "POST", body: JSON.stringify({ device_id: desk.camera, timeout_s: 15 }) })).json());
    } catch (e) { deskToast(e.message); } finally { q("#pcap") && (q("#pcap").disabled = false); }
  };
  q("#pfile").onchange = async (ev) => {
    const file = ev.target.files[0]; if (!file) return;
    const url = URL.createObjectURL(file);
    q("#pview").innerHTML = `<img alt="portrait" src="${url}">`;
    try {
      show(await (await deskApi(`/v1/enrollments/${desk.sid}/portrait`,
        { method: "POST", raw: true, headers: { "Content-Type": file.type || "application/octet-stream" }, body: file })).json());
    } catch (e) { deskToast(e.message); }
  };
}

function renderDuplicates(body, st) {
  body.innerHTML = `<button id="dsearch">${escd(dt("search"))}</button>`;
  q("#dsearch").onclick = async () => {
    q("#dsearch").disabled = true;
    try {
      desk.state = await (await deskApi(`/v1/enrollments/${desk.sid}/duplicates`, { method: "POST" })).json();
      render();
    } catch (e) { deskToast(e.message); q("#dsearch").disabled = false; }
  };
}

function reviewTable(st) {
  const d = st.demographics || {};
  const div = document.createElement("div");
  div.className = "review";
  const fingers = Object.values(st.fingers).map((f) => `<figure><img alt="${escd(dt("f" + f.position))}"
      src="/v1/enrollments/${st.session_id}/images/${encodeURIComponent(f.image)}"><figcaption>${escd(dt("f" + f.position))} · ${f.nfiq2 ?? "—"}</figcaption></figure>`).join("");
  const portrait = st.portrait ? `<img class="token" alt="portrait" src="/v1/enrollments/${st.session_id}/images/${encodeURIComponent(st.portrait.token)}">` : "";
  div.innerHTML = `<div class="who">${portrait}<dl>
      <dt>${escd(dt("surname"))}</dt><dd data-role="surname">${escd(d.surname)}</dd>
      <dt>${escd(dt("given_names"))}</dt><dd>${escd(d.given_names)}</dd>
      <dt>${escd(dt("id_number"))}</dt><dd>${escd(d.id_number)}</dd>
      <dt>${escd(dt("date_of_birth"))}</dt><dd>${escd(d.date_of_birth)}</dd></dl></div>
      <div class="gallery">${fingers}</div>`;
  return div;
}

function renderReview(body, st) {
  const dup = st.duplicates || { hits: [] };
  const hits = dup.hits.length ? `<div class="error" data-role="dups">${escd(dt("duplicates_found"))}<ul>${dup.hits.map((h) =>
      `<li>${escd(h.session_id)}: ${h.fingers.map((p) => escd(dt("f" + p))).join(", ")} (${h.scores.join(", ")})</li>`).join("")}</ul>
      <label>${escd(dt("clear_reason"))}<input id="clear" maxlength="500"></label></div>`
    : `<p class="okline" data-role="dups">${escd(dt("no_duplicates"))} (${dup.searched_fingers} ${escd(dt("searched"))}, ${escd(dt("gallery"))} ${dup.gallery_size})</p>`;
  body.innerHTML = hits;
  body.appendChild(reviewTable(st));
  const row = document.createElement("div");
  row.className = "row";
  row.innerHTML = `<button id="confirm">${escd(dt("confirm"))}</button>
    <input id="creason" maxlength="500" placeholder="${escd(dt("cancel_reason"))}"><button class="secondary" id="cancel">${escd(dt("cancel"))}</button>`;
  body.appendChild(row);
  q("#confirm").onclick = async () => {
    const clear = q("#clear") ? q("#clear").value.trim() : null;
    try {
      desk.state = await (await deskApi(`/v1/enrollments/${desk.sid}/confirm`,
        { method: "POST", body: JSON.stringify({ operator: "desk", duplicate_cleared: clear || null }) })).json();
      render(); loadQueue();
    } catch (e) { deskToast(e.message); }
  };
  q("#cancel").onclick = async () => {
    const reason = q("#creason").value.trim();
    if (!reason) { q("#creason").focus(); return; }
    try {
      desk.state = await (await deskApi(`/v1/enrollments/${desk.sid}/cancel`,
        { method: "POST", body: JSON.stringify({ operator: "desk", reason }) })).json();
      render(); loadQueue();
    } catch (e) { deskToast(e.message); }
  };
}

async function verifyCitizen() {
  const out = q("#vresult");
  const can = q("#vcan").value.trim();
  if (!desk.reader) { deskToast(dt("no_reader")); return; }
  q("#vgo").disabled = true; q("#vstep").textContent = dt("verifying"); out.innerHTML = "";
  try {
    const r = await (await deskApi("/v1/verifications", { method: "POST", body: JSON.stringify({
      reader_id: desk.reader, can, camera_id: desk.camera, scanner_id: desk.scanner, operator: "desk" }) })).json();
    const f = r.face;
    const rows = [];
    if (f) rows.push(`<tr><th>${escd(dt("face"))}</th><td>${escd(f.decision)}</td><td>${escd(dt("score"))} ${f.distance ?? "—"}</td>
      <td>${escd(dt("threshold"))} ${f.operating_point.threshold} (${escd(f.operating_point.name)})</td></tr>`);
    for (const c of r.fingers.comparisons) rows.push(`<tr><th>${escd(dt("f" + c.position))}</th><td>${c.match ? "match" : escd(c.error || "no match")}</td>
      <td>${escd(dt("score"))} ${c.score ?? "—"}</td><td>${escd(dt("threshold"))} ${r.fingers.threshold} (${escd(r.fingers.operating_point)})</td></tr>`);
    out.innerHTML = `<div class="verdict ${escd(r.decision)}" data-role="verdict" data-decision="${escd(r.decision)}">${escd(dt(r.decision))}</div>
      <p>${escd(dt("document"))} ${escd(r.document.document_number)} · ${escd(dt("pa"))}: ${escd(r.document.passive_authentication)}
        · ${escd(dt("ta"))}: ${escd(r.document.terminal_authentication)}</p>
      <table class="vtable">${rows.join("")}</table><ul class="checks">${r.reasons.map((x) => `<li>${escd(x)}</li>`).join("")}</ul>`;
  } catch (e) { deskToast(e.message); }
  finally { q("#vgo").disabled = false; q("#vstep").textContent = ""; }
}

async function startDesk() {
  q("#vgo").onclick = () => verifyCitizen();
  document.querySelectorAll("[data-di18n]").forEach((el) => (el.textContent = dt(el.dataset.di18n)));
  q("#new-applicant").onclick = () => newApplicant().catch((e) => deskToast(e.message));
  try { await pickDevices(); } catch (e) { deskToast(e.message); }
  await loadQueue().catch((e) => deskToast(e.message));
  render();
}

window.deskRender = () => { document.querySelectorAll("[data-di18n]").forEach((el) => (el.textContent = dt(el.dataset.di18n))); render(); loadQueue().catch(() => {}); };
window.deskRefreshDevices = () => pickDevices().then(render).catch(() => {});
startDesk();
