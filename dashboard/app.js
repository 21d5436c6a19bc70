// The dashboard page: renders what the server streams (docs/dashboard.md). It draws only
// what arrives; nothing is invented. State for tests and tools is mirrored into data-*
// attributes on <body> and on the panels' elements.
import { DensePoseClient } from "./client.js";

// COCO-17: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
const LIMBS = [
  [0, 1], [0, 2], [1, 3], [2, 4], [5, 6], [5, 7], [7, 9], [6, 8], [8, 10],
  [5, 11], [6, 12], [11, 12], [11, 13], [13, 15], [12, 14], [14, 16],
];
const TRAIL_MS = 10_000;
// A tracked person whose frame carries no keypoints (the detector missed them in that
// frame; the track goes on) is drawn with the last skeleton received for the track,
// faded, for at most this long.
const HOLD_MS = 1_000;
const OCC_HISTORY = 120;
const MAX_ALERTS = 100;
const MAX_EVENTS = 50;

const $ = (id) => document.getElementById(id);
const body = document.body;

function trackColour(id) {
  if (id === undefined || id === null) return "#aaaaaa";
  const n = typeof id === "number" ? id : [...String(id)].reduce((a, c) => a * 31 + c.charCodeAt(0), 7);
  const hue = (Math.abs(n) * 137.508) % 360; // golden angle: neighbouring ids far apart
  return `hsl(${hue.toFixed(0)}, 80%, 60%)`;
}

function fmtTime(ts) {
  const d = ts ? new Date(ts) : new Date();
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleTimeString();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

// ---- token ------------------------------------------------------------------------
const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("wdp_token") || "";
if (params.has("token")) {
  // Keep the token out of the address bar, history and bookmarks.
  params.delete("token");
  const q = params.toString();
  history.replaceState(null, "", location.pathname + (q ? `?${q}` : "") + location.hash);
}

// ---- per-environment state ----------------------------------------------------------
const rooms = new Map(); // env -> {canvas, meta, persons, trails: Map(track -> [{x,y,t}]), extent, lastFrame}
const occupancy = new Map(); // env -> {history: [n], node}
let framesThisSecond = 0;
let framesTotal = 0;

function keypointXY(k) {
  if (Array.isArray(k)) return { x: k[0], y: k[1], c: k.length > 2 ? k[2] : 1 };
  if (k && typeof k === "object") return { x: k.x, y: k.y, c: k.confidence ?? (k.visible === false ? 0 : 1) };
  return null;
}

function roomFor(env) {
  let r = rooms.get(env);
  if (r) return r;
  $("rooms-empty")?.remove();
  const canvas = el("canvas", { width: 640, height: 480 });
  const meta = el("span", { class: "meta" });
  const node = el("div", { class: "room", "data-env": env, "data-persons": "0" },
    el("h3", {}, el("span", {}, env), meta), canvas);
  $("rooms").append(node);
  r = { env, node, canvas, meta, persons: [], trails: new Map(), skeletons: new Map(), extent: null, lastFrame: 0 };
  rooms.set(env, r);
  addEnvOption(env);
  return r;
}

function onPose(msg) {
  const d = msg.data || {};
  const env = d.environment_id || "—";
  const r = roomFor(env);
  const persons = Array.isArray(d.persons) ? d.persons : [];
  r.persons = persons;
  r.lastFrame = performance.now();
  // Coordinates: normalized [0, 1] (the simulator's floor frame) or pixels (the spec's
  // example); pixel frames are fitted to the largest extent seen in this room.
  let maxX = 0;
  let maxY = 0;
  for (const p of persons) {
    for (const k of p.keypoints || []) {
      const q = keypointXY(k);
      if (q && Number.isFinite(q.x) && Number.isFinite(q.y)) {
        maxX = Math.max(maxX, q.x);
        maxY = Math.max(maxY, q.y);
      }
    }
  }
  if (maxX > 1.0001 || maxY > 1.0001 || r.extent) {
    const w = Math.max(maxX, r.extent?.w || 640);
    const h = Math.max(maxY, r.extent?.h || 480);
    r.extent = { w, h };
  }
  const now = performance.now();
  for (const p of persons) {
    const id = p.track_id ?? p.person_id;
    const pts = (p.keypoints || []).map(keypointXY).filter((q) => q && Number.isFinite(q.x) && q.c > 0);
    if (pts.length && id !== undefined) r.skeletons.set(id, { keypoints: p.keypoints, t: now });
    let cx;
    let cy;
    if (pts.length) {
      cx = pts.reduce((a, q) => a + q.x, 0) / pts.length;
      cy = pts.reduce((a, q) => a + q.y, 0) / pts.length;
    } else if (placedXY(p, d.metadata?.room_size, r)) {
      // Placed by the localizer alone (metres, no keypoints): the dot's trail.
      ({ x: cx, y: cy } = placedXY(p, d.metadata.room_size, r));
    } else if (p.bounding_box) {
      const b = p.bounding_box;
      cx = Array.isArray(b) ? (b[0] + b[2]) / 2 : b.x + b.width / 2;
      cy = Array.isArray(b) ? (b[1] + b[3]) / 2 : b.y + b.height / 2;
    }
    if (cx !== undefined && id !== undefined) {
      const trail = r.trails.get(id) || [];
      trail.push({ x: cx, y: cy, t: now });
      r.trails.set(id, trail);
    }
  }
  // Where the poses come from: a model's version, or "oracle:simulator-truth" when a
  // simulated room's detections are made from the simulator's ground truth.
  const model = d.metadata?.model_version || d.model_version || "";
  // Where no model can place people (one antenna, or a trained classifier), the sensor
  // still says someone is there: shown as such, never drawn at an invented place.
  const unlocalized = persons.filter((p) => p.localized === false);
  r.unlocalized = unlocalized;
  const cls = d.metadata?.classification?.type || unlocalized.map((p) => p.activity?.type).find(Boolean) || "";
  r.classification = cls;
  const motion = d.metadata?.motion_level;
  const parts = [`${persons.length} ${persons.length === 1 ? "person" : "people"}`];
  if (unlocalized.length) parts.push("not localized");
  if (cls) parts.push(cls);
  if (typeof motion === "number") parts.push(`motion ${motion.toFixed(2)}`);
  parts.push(`frame ${d.frame_id ?? "—"}`);
  if (model) parts.push(model);
  r.meta.textContent = parts.join(" · ");
  r.node.setAttribute("data-unlocalized", String(unlocalized.length));
  r.node.setAttribute("data-activity", cls);
  r.node.setAttribute("data-motion", typeof motion === "number" ? String(motion) : "");
  r.node.setAttribute("data-model", model);
  r.node.setAttribute("data-persons", String(persons.length));
  r.node.setAttribute("data-frame-id", String(d.frame_id ?? ""));
  r.node.setAttribute("data-tracks", persons.map((p) => p.track_id ?? p.person_id).join(","));
  r.node.setAttribute("data-keypoints", String(persons.reduce((a, p) => a + (p.keypoints || []).length, 0)));
  r.roomSize = d.metadata?.room_size;
  const present = new Set(persons.map((p) => p.track_id ?? p.person_id));
  for (const id of r.skeletons.keys()) if (!present.has(id)) r.skeletons.delete(id);
  framesThisSecond += 1;
  framesTotal += 1;
  body.dataset.frames = String(framesTotal);
  body.dataset.persons = String([...rooms.values()].reduce((a, x) => a + x.persons.length, 0));
  draw(r);
}

// A person's `position` (metres in the room frame) in the room's drawing frame, when the
// frame says how big the room is (`metadata.room_size`, sent with localized positions).
function placedXY(p, roomSize, r) {
  const pos = p.position;
  if (!pos || !Array.isArray(roomSize) || !(roomSize[0] > 0) || !(roomSize[1] > 0)) return null;
  if (!Number.isFinite(pos.x) || !Number.isFinite(pos.y)) return null;
  const u = Math.min(1, Math.max(0, pos.x / roomSize[0]));
  const v = Math.min(1, Math.max(0, pos.y / roomSize[1]));
  return r.extent ? { x: u * r.extent.w, y: v * r.extent.h } : { x: u, y: v };
}

function draw(r) {
  const { canvas } = r;
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const pad = 16;
  const sx = (x) => pad + (r.extent ? x / r.extent.w : x) * (W - 2 * pad);
  const sy = (y) => pad + (r.extent ? y / r.extent.h : y) * (H - 2 * pad);
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#2a3541";
  ctx.lineWidth = 1;
  ctx.strokeRect(pad, pad, W - 2 * pad, H - 2 * pad);
  const now = performance.now();
  // Trajectories.
  for (const [id, trail] of r.trails) {
    while (trail.length && now - trail[0].t > TRAIL_MS) trail.shift();
    if (!trail.length) {
      r.trails.delete(id);
      continue;
    }
    ctx.strokeStyle = trackColour(id);
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = 2;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    trail.forEach((q, i) => (i ? ctx.lineTo(sx(q.x), sy(q.y)) : ctx.moveTo(sx(q.x), sy(q.y))));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }
  // Skeletons.
  let drawn = 0;
  let held = 0;
  for (const p of r.persons) {
    const id = p.track_id ?? p.person_id;
    const colour = trackColour(id);
    let kps = (p.keypoints || []).map(keypointXY);
    const placed = kps.some((q) => q && q.c > 0) ? null : placedXY(p, r.roomSize, r);
    if (placed) {
      // A position with no body (the sensor and localizer, no pose model): a dot where
      // the person is, never an invented skeleton.
      ctx.fillStyle = colour;
      ctx.beginPath();
      ctx.arc(sx(placed.x), sy(placed.y), 9, 0, 2 * Math.PI);
      ctx.fill();
      const activity = p.activity && (p.activity.type || p.activity.label);
      ctx.font = "bold 13px system-ui, sans-serif";
      ctx.fillText(`#${id ?? "?"}${activity ? ` ${activity}` : ""}`, sx(placed.x) + 12, sy(placed.y) - 10);
      drawn += 1;
      continue;
    }
    if (!kps.some((q) => q && q.c > 0 && Number.isFinite(q.x))) {
      const last = r.skeletons.get(id);
      if (!last || now - last.t > HOLD_MS) continue;
      kps = last.keypoints.map(keypointXY);
      held += 1;
      ctx.globalAlpha = 0.45;
    }
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 3;
    for (const [a, b] of LIMBS) {
      const A = kps[a];
      const B = kps[b];
      if (!A || !B || !(A.c > 0) || !(B.c > 0)) continue;
      ctx.beginPath();
      ctx.moveTo(sx(A.x), sy(A.y));
      ctx.lineTo(sx(B.x), sy(B.y));
      ctx.stroke();
    }
    let top = null;
    for (const q of kps) {
      if (!q || !(q.c > 0) || !Number.isFinite(q.x)) continue;
      ctx.beginPath();
      ctx.arc(sx(q.x), sy(q.y), 3.5, 0, 2 * Math.PI);
      ctx.fill();
      if (!top || q.y < top.y) top = q;
    }
    if (top) {
      drawn += 1;
      const activity = p.activity && (p.activity.type || p.activity.label);
      const label = `#${id ?? "?"}${activity ? ` ${activity}` : ""}`;
      ctx.font = "bold 13px system-ui, sans-serif";
      ctx.fillText(label, sx(top.x) + 6, sy(top.y) - 8);
    }
    ctx.globalAlpha = 1;
  }
  if (r.unlocalized?.length) {
    // Present, position unknown on this device: a label in the room, not a body.
    ctx.fillStyle = "#c9d1d9";
    ctx.font = "bold 16px system-ui, sans-serif";
    ctx.textAlign = "center";
    const what = r.classification ? ` — ${r.classification}` : "";
    ctx.fillText(`someone present (position unknown)${what}`, W / 2, H / 2);
    ctx.textAlign = "start";
  }
  r.node.setAttribute("data-drawn", String(drawn));
  r.node.setAttribute("data-held", String(held));
}

// Frames stop arriving when a room empties or the stream pauses: fade stale rooms.
setInterval(() => {
  const now = performance.now();
  for (const r of rooms.values()) {
    r.canvas.style.opacity = now - r.lastFrame > 5000 ? "0.5" : "1";
    if (r.trails.size) draw(r);
  }
  $("perf-rx").textContent = `${framesThisSecond}`;
  framesThisSecond = 0;
}, 1000);

// ---- occupancy ------------------------------------------------------------------------
function onOccupancy(msg) {
  const d = msg.data || {};
  const env = d.environment_id || "—";
  const n = d.current_occupancy ?? d.occupancy ?? d.count;
  if (typeof n !== "number") return;
  let o = occupancy.get(env);
  if (!o) {
    $("occupancy").querySelector(".empty")?.remove();
    const count = el("span", { class: "count" });
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${OCC_HISTORY} 48`);
    svg.setAttribute("preserveAspectRatio", "none");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#58a6ff");
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    const node = el("div", { class: "occ", "data-env": env }, count, el("span", { class: "name" }, env), svg);
    $("occupancy").append(node);
    o = { history: [], node, count, line };
    occupancy.set(env, o);
    addEnvOption(env);
  }
  o.history.push(n);
  if (o.history.length > OCC_HISTORY) o.history.shift();
  o.count.textContent = String(n);
  o.node.setAttribute("data-occupancy", String(n));
  o.node.title = d.change_type ? `${d.change_type} at ${fmtTime(msg.timestamp)}` : fmtTime(msg.timestamp);
  const max = Math.max(1, ...o.history);
  const off = OCC_HISTORY - o.history.length;
  o.line.setAttribute("points", o.history.map((v, i) => `${off + i},${46 - (v / max) * 42}`).join(" "));
}

// ---- alerts ---------------------------------------------------------------------------
const openFalls = new Map(); // key -> li
function isFall(d) {
  return /fall/i.test(d.event_type || "") && !/recover/i.test(d.event_type || "");
}
function isRecovery(d) {
  return /recover/i.test(d.event_type || "") || d.details?.recovery_detected === true;
}
function who(d) {
  const parts = [];
  if (d.track_id !== undefined) parts.push(`track ${d.track_id}`);
  if (d.person_id !== undefined) parts.push(`person ${d.person_id}`);
  return parts.join(" / ") || "unknown person";
}
function where(d) {
  const loc = d.location;
  const at = loc && Number.isFinite(loc.x) && Number.isFinite(loc.y) ? ` at (${loc.x.toFixed(1)}, ${loc.y.toFixed(1)}) m` : "";
  return `in ${d.environment_id || "?"}${at}`;
}
function fallKey(d) {
  return `${d.environment_id}|${d.track_id ?? d.person_id}`;
}

function onActivity(msg) {
  const d = msg.data || {};
  $("alerts").querySelector(".empty")?.remove();
  const fall = isFall(d);
  if (!fall && isRecovery(d)) {
    const li = openFalls.get(fallKey(d));
    if (li) markRecovered(li, msg.timestamp);
  }
  const li = addAlert(msg, d, fall);
  if (fall && d.details?.recovery_detected === true) markRecovered(li, msg.timestamp);
  updateBanner();
}

function markRecovered(li, ts) {
  li.classList.add("recovered");
  li.dataset.recovered = "true";
  li.querySelector(".status").textContent = `recovered ${fmtTime(ts)}`;
}

function addAlert(msg, d, fall) {
  const list = $("alerts");
  const sev = d.severity || "info";
  const status = el("span", { class: "status" }, fall ? "unacknowledged" : "");
  // A fall is shown at the time of its impact when the event says it (the alert follows
  // after the person has been seen lying), else at the message's time.
  const when = (fall && d.details?.impact_time) || msg.timestamp;
  const loc = d.location && Number.isFinite(d.location.x) ? `${d.location.x},${d.location.y}` : "";
  const li = el("li", {
    class: fall ? "fall" : "",
    "data-event-type": d.event_type || "",
    "data-env": d.environment_id || "",
    "data-track": String(d.track_id ?? ""),
    "data-person": String(d.person_id ?? ""),
    "data-time": when || "",
    "data-location": loc,
    "data-acknowledged": fall ? "false" : "true",
  },
  el("span", { class: "time" }, fmtTime(when)),
  el("span", { class: `sev-${sev}` }, fall ? `FALL — ${who(d)}` : `${d.event_type || "activity"} — ${who(d)}`),
  el("span", {}, where(d)),
  el("span", { class: "time" }, d.confidence !== undefined ? `conf ${Number(d.confidence).toFixed(2)}` : ""),
  status);
  if (msg.metadata?.replayed_from) li.append(el("span", { class: "time" }, "(replayed)"));
  if (fall) {
    const btn = el("button", { type: "button" }, "Acknowledge");
    btn.addEventListener("click", () => acknowledge(li));
    li.append(btn);
    openFalls.set(fallKey(d), li);
  }
  list.prepend(li);
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
  return li;
}

function acknowledge(li) {
  li.classList.add("acknowledged");
  li.dataset.acknowledged = "true";
  li.querySelector("button")?.remove();
  const s = li.querySelector(".status");
  if (li.dataset.recovered !== "true") s.textContent = `acknowledged ${new Date().toLocaleTimeString()}`;
  updateBanner();
}

function updateBanner() {
  const open = [...$("alerts").querySelectorAll("li.fall[data-acknowledged='false']")];
  const banner = $("fall-banner");
  body.dataset.openFalls = String(open.length);
  if (!open.length) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  const newest = open[0];
  const btn = el("button", { type: "button" }, open.length > 1 ? "Acknowledge all" : "Acknowledge");
  btn.addEventListener("click", () => open.forEach(acknowledge));
  banner.replaceChildren(
    el("span", {}, `⚠ FALL DETECTED — ${newest.children[1].textContent.replace(/^FALL — /, "")} ${newest.children[2].textContent}, ${newest.children[0].textContent}`
      + (open.length > 1 ? ` (+${open.length - 1} more)` : "")),
    btn,
  );
  banner.hidden = false;
}

function onTracking(msg) {
  const d = msg.data || {};
  addEvent(msg, `tracking: ${d.event || "update"} — track ${d.track_id ?? "?"} in ${d.environment_id || "?"}`, d.severity);
}

// ---- system / hardware events ---------------------------------------------------------
function addEvent(msg, text, severity = "info") {
  const list = $("events");
  list.querySelector(".empty")?.remove();
  list.prepend(el("li", { "data-type": msg.type },
    el("span", { class: "time" }, fmtTime(msg.timestamp)),
    el("span", { class: `sev-${severity || "info"}` }, text)));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function onSystem(msg) {
  const d = msg.data || {};
  const what = d.event || d.event_type || msg.type;
  const where = d.environment_id ? ` in ${d.environment_id}` : "";
  const src = d.source_id || d.node_id || d.device_id;
  addEvent(msg, `${msg.type.replace("_event", "")}: ${what}${where}${src ? ` (${src})` : ""}${d.message ? ` — ${d.message}` : ""}`, d.severity);
}

function onPerformance(msg) {
  const m = (msg.data && msg.data.metrics) || {};
  const f = (v, unit, digits = 1) => (typeof v === "number" ? `${v.toFixed(digits)}${unit}` : "—");
  $("perf-fps").textContent = f(m.frames_per_second, "");
  $("perf-latency").textContent = f(m.average_latency_ms, " ms");
  $("perf-cpu").textContent = f(m.cpu_usage, " %");
  $("perf-mem").textContent = typeof m.memory_rss_mb === "number" ? `${m.memory_rss_mb.toFixed(0)} MB` : f(m.memory_usage, " %");
  $("perf").dataset.fps = String(m.frames_per_second ?? "");
  for (const a of msg.data?.alerts || []) addEvent(msg, `performance: ${a.type} ${a.value} (threshold ${a.threshold})`, a.severity);
}

// ---- environments and subscriptions -----------------------------------------------------
function addEnvOption(env) {
  const sel = $("env-select");
  if (!env || env === "—" || [...sel.options].some((o) => o.value === env)) return;
  sel.append(el("option", { value: env }, env));
}

function subscriptions() {
  const env = $("env-select").value;
  const quality = $("quality").value;
  const minConf = Math.min(1, Math.max(0, Number($("min-conf").value) || 0));
  const envFilter = env ? { environment_id: env } : {};
  return [
    { event_type: "pose_data", filters: { ...envFilter, min_confidence: minConf }, quality },
    { event_type: "activity_event", filters: { ...envFilter } },
    { event_type: "occupancy_update", filters: { ...envFilter } },
    { event_type: "tracking_update", filters: { ...envFilter } },
    { event_type: "system_event" },
    { event_type: "hardware_event", filters: { ...envFilter } },
    { event_type: "performance_update" },
    { event_type: "analytics_stream", filters: { ...envFilter } },
  ];
}

async function loadEnvironments() {
  try {
    // /health lists only the environments the token grants (none without one).
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const r = await fetch("/health", { cache: "no-store", headers });
    const h = await r.json();
    for (const e of h.environments || []) addEnvOption(e);
  } catch {
    // The socket's own state reports an unreachable server.
  }
}

// ---- connection -----------------------------------------------------------------------
let client = null;

function showState(detail) {
  const { state, retryInMs, reason } = detail;
  body.dataset.state = state;
  $("conn").className = `conn ${state}`;
  let text = state;
  if (state === "reconnecting" && retryInMs) text = `reconnecting in ${(retryInMs / 1000).toFixed(1)} s (attempt ${detail.attempt})`;
  if (state === "refused") text = "refused";
  $("conn-text").textContent = text;
  $("c-state").textContent = reason ? `${state} (${reason})` : state;
  if (state === "refused") {
    body.dataset.error = reason || "refused";
    $("login").hidden = false;
    $("login-error").textContent = `Not connected: ${reason}.`;
  } else if (state === "connected") {
    delete body.dataset.error;
    $("login").hidden = true;
    $("login-error").textContent = "";
  }
}

function start() {
  if (client) client.close();
  if (!token) {
    $("login").hidden = false;
    $("login-error").textContent = "Enter a token to connect.";
    body.dataset.state = "no_token";
    return;
  }
  client = new DensePoseClient({ token, subscriptions: subscriptions() });
  client.addEventListener("state", (e) => showState(e.detail));
  client.addEventListener("message", (e) => {
    const seq = e.detail.metadata?.sequence;
    if (typeof seq === "number") {
      body.dataset.lastSequence = String(seq);
      $("c-seq").textContent = String(seq);
    }
  });
  client.addEventListener("gap", () => {
    body.dataset.dropped = String(client.dropped);
    $("c-dropped").textContent = String(client.dropped);
  });
  const bumpReconnects = () => {
    body.dataset.reconnects = String(client.reconnects);
    $("c-reconnects").textContent = String(client.reconnects);
  };
  client.addEventListener("reconnected", bumpReconnects);
  client.addEventListener("resumed", (e) => addEvent({ type: "ack" }, `resumed session: ${e.detail.replayed} alerts replayed${e.detail.alerts_lost ? ", some alerts lost" : ""}`));
  client.addEventListener("resume_failed", () => addEvent({ type: "error" }, "resume failed (server restarted?): subscribed afresh", "warning"));
  client.addEventListener("connection_status", (e) => {
    $("c-session").textContent = client.sessionId || e.detail.data?.session_id || "—";
  });
  client.addEventListener("error", (e) => {
    const d = e.detail.data || {};
    if (d.error_code === "RESUME_FAILED") return;
    addEvent(e.detail, `server error ${d.error_code}: ${d.message || ""}`, "error");
  });
  client.addEventListener("disconnect", (e) => {
    const d = e.detail.data || {};
    addEvent(e.detail, `disconnect: ${d.reason}${d.resumable ? " (resumable)" : ""}`, "warning");
  });
  client.addEventListener("token_expired", (e) => addEvent(e.detail, "token expired", "error"));
  client.addEventListener("pose_data", (e) => onPose(e.detail));
  client.addEventListener("occupancy_update", (e) => onOccupancy(e.detail));
  client.addEventListener("activity_event", (e) => onActivity(e.detail));
  client.addEventListener("tracking_update", (e) => onTracking(e.detail));
  client.addEventListener("system_event", (e) => onSystem(e.detail));
  client.addEventListener("hardware_event", (e) => onSystem(e.detail));
  client.addEventListener("performance_update", (e) => onPerformance(e.detail));
  client.addEventListener("analytics_stream", (e) => {
    const d = e.detail.data || {};
    addEvent(e.detail, `analytics${d.environment_id ? ` ${d.environment_id}` : ""}: ${Object.keys(d).filter((k) => k !== "environment_id").join(", ")}`);
  });
  client.connect();
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("wdp_token", token);
  start();
});
for (const id of ["env-select", "quality", "min-conf"]) {
  $(id).addEventListener("change", () => client && client.resubscribe(subscriptions()));
}
$("disconnect").addEventListener("click", () => {
  if (client && client.state !== "closed") {
    client.close();
    $("disconnect").textContent = "Connect";
  } else {
    $("disconnect").textContent = "Disconnect";
    start();
  }
});

window.densepose = { get client() { return client; } };
loadEnvironments();
start();
