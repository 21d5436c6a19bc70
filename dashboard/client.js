// WiFi-DensePose WebSocket client for browsers (docs/dashboard.md, docs/protocol.md).
// A module of its own, usable outside the dashboard:
//
//   import { DensePoseClient } from "/dashboard/client.js";
//   const c = new DensePoseClient({ token, subscriptions: [{ event_type: "pose_data" }] });
//   c.addEventListener("message", (e) => console.log(e.detail.type));
//   c.connect();
//
// It connects to /ws/v1 of the page's origin (or `url`), offers the `wifi-densepose-v1`
// subprotocol, subscribes, sends a heartbeat every 30 s, counts sequence gaps (dropped
// messages), and after an unclean disconnect reconnects with exponential backoff and
// sends `resume` with the last sequence it received; when the server no longer knows the
// session (restarted, expired) it subscribes afresh. The token is never logged.
//
// Events (all CustomEvent, `detail` as noted):
//   state    {state, attempt, retryInMs, reason}   connecting | connected | reconnecting | refused | closed
//   message  the envelope {type, timestamp, data, metadata}, for every server message
//   <type>   the same envelope, for each message type (pose_data, activity_event, ack, error…)
//   gap      {missing, from, to}: sequence numbers skipped (messages the server dropped)
//   reconnected {reconnects}; resumed (the resume ack's data); resume_failed (the error's data)

export const SUBPROTOCOL = "wifi-densepose-v1";
const HEARTBEAT_MS = 30_000;

function nowIso() {
  return new Date().toISOString().replace(/(\.\d{3})\d*Z$/, "$1Z");
}

export class DensePoseClient extends EventTarget {
  constructor({
    token,
    url = null,
    subscriptions = [],
    backoff = { initialMs: 500, maxMs: 15_000, factor: 2 },
    WebSocketImpl = globalThis.WebSocket,
  } = {}) {
    super();
    this.token = token;
    this.url = url || DensePoseClient.defaultUrl();
    this.subscriptions = subscriptions;
    this.backoff = backoff;
    this.WebSocketImpl = WebSocketImpl;
    this.state = "idle";
    this.ws = null;
    this.clientId = null;
    this.sessionId = null;
    this.lastSequence = 0;
    this.dropped = 0;
    this.received = 0;
    this.attempt = 0;
    this.reconnects = 0;
    this.subscriptionIds = [];
    this._everOpened = false;
    this._resuming = false;
    this._stopped = false;
    this._timer = null;
    this._heartbeat = null;
  }

  static defaultUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/ws/v1`;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit("state", { state, attempt: this.attempt, ...extra });
  }

  connect() {
    this._stopped = false;
    clearTimeout(this._timer);
    this._open();
  }

  /** Ends the session cleanly (the server forgets it; no reconnect). */
  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    clearInterval(this._heartbeat);
    if (this.ws && this.ws.readyState === 1) {
      this.send("disconnect", {});
    }
    if (this.ws) this.ws.close(1000);
    this._setState("closed", { reason: "client_requested" });
  }

  send(type, data = {}) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify({ type, timestamp: nowIso(), data, metadata: {} }));
    return true;
  }

  /** Replaces the subscriptions: unsubscribes the current ones, subscribes `subs`. */
  resubscribe(subs) {
    this.subscriptions = subs;
    if (this.state !== "connected") return;
    if (this.subscriptionIds.length) {
      this.send("unsubscribe", { subscription_ids: this.subscriptionIds });
    }
    this.subscriptionIds = [];
    this.send("subscribe", { subscriptions: subs });
  }

  _open() {
    const reconnecting = this._everOpened;
    this._lastSessionSequence = this.lastSequence;
    this._setState(reconnecting ? "reconnecting" : "connecting", { retryInMs: 0 });
    const sep = this.url.includes("?") ? "&" : "?";
    let ws;
    try {
      ws = new this.WebSocketImpl(`${this.url}${sep}token=${encodeURIComponent(this.token)}`, [SUBPROTOCOL]);
    } catch (e) {
      this._setState("refused", { reason: `bad URL: ${e.message}` });
      return;
    }
    this.ws = ws;
    let opened = false;
    let prevSeq = null;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      clearInterval(this._heartbeat);
      this._heartbeat = setInterval(() => this.send("heartbeat", { client_id: this.clientId }), HEARTBEAT_MS);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      const seq = msg.metadata && msg.metadata.sequence;
      if (typeof seq === "number") {
        if (prevSeq !== null && seq > prevSeq + 1 && !this._resuming) {
          const missing = seq - prevSeq - 1;
          this.dropped += missing;
          this._emit("gap", { missing, from: prevSeq + 1, to: seq - 1 });
        }
        prevSeq = seq;
        this.lastSequence = seq;
      }
      this.received += 1;
      this._handle(msg);
      this._emit("message", msg);
      this._emit(msg.type, msg);
    };
    ws.onclose = (ev) => {
      clearInterval(this._heartbeat);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this._stopped) return;
      if (!opened) {
        this._failedBeforeOpen();
        return;
      }
      // 1000 (client_requested), 1001 (server_shutdown) and the non-resumable codes end
      // the session; anything else (1006: the connection broke) leaves it resumable.
      if ([1000, 1001, 1008, 1009, 4001, 4003].includes(ev.code)) {
        this.sessionId = null;
      }
      if (ev.code === 4001 || ev.code === 4003) {
        const why = ev.code === 4001 ? "token expired: enter a fresh token" : "another connection took this session";
        this._setState("refused", { reason: why });
        return;
      }
      this._schedule(`closed ${ev.code}${ev.reason ? ` ${ev.reason}` : ""}`);
    };
  }

  async _failedBeforeOpen() {
    // A browser does not show the handshake's HTTP status. If the server answers /health
    // it is up, so the refusal was about the token: say so and stop retrying.
    let up = false;
    try {
      const base = this.url.replace(/^ws/, "http").replace(/\/ws\/v1.*$/, "");
      const r = await fetch(`${base}/health`, { cache: "no-store" });
      up = r.ok;
    } catch {
      up = false;
    }
    if (this._stopped) return;
    if (up) {
      this._setState("refused", {
        reason: "the server refused the connection: the token is missing, invalid or expired",
      });
    } else {
      this._schedule("server unreachable");
    }
  }

  _schedule(reason) {
    this.attempt += 1;
    const { initialMs, maxMs, factor } = this.backoff;
    const base = Math.min(maxMs, initialMs * factor ** (this.attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this._setState("reconnecting", { retryInMs: delay, reason });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._open(), delay);
  }

  _handle(msg) {
    const d = msg.data || {};
    if (msg.metadata && msg.metadata.client_id) this.clientId = msg.metadata.client_id;
    switch (msg.type) {
      case "connection_status":
        if (msg.metadata && msg.metadata.sequence === 1) {
          // First message of a connection.
          if (this._everOpened) {
            this.reconnects += 1;
            this._emit("reconnected", { reconnects: this.reconnects });
          }
          if (this.sessionId && this._everOpened) {
            this._resuming = true;
            this.send("resume", { session_id: this.sessionId, last_sequence: this._resumeFrom() });
          } else {
            this.sessionId = d.session_id;
            this.send("subscribe", { subscriptions: this.subscriptions });
          }
          this._everOpened = true;
          this._setState("connected");
        }
        break;
      case "ack":
        if (d.message_type === "resume" && d.status === "success") {
          this._resuming = false;
          this.sessionId = d.session_id;
          this.subscriptionIds = (d.active_subscriptions || []).map((s) => s.subscription_id);
          this._emit("resumed", d);
        } else if (d.active_subscriptions && !d.removed && d.message_type !== "resume") {
          this.subscriptionIds = (d.all_subscriptions || d.active_subscriptions).map((s) => s.subscription_id);
        }
        break;
      case "error":
        if (d.error_code === "RESUME_FAILED" || d.code === "RESUME_FAILED") {
          // The server does not know the session (restarted, or it expired): start afresh.
          this._resuming = false;
          this._emit("resume_failed", d);
          this.sessionId = null;
          this.send("connection_status", {});
          this.send("subscribe", { subscriptions: this.subscriptions });
        }
        break;
      case "disconnect":
        if (d.resumable === false) this.sessionId = null;
        break;
      default:
        break;
    }
    if (msg.type === "connection_status" && !this.sessionId) this.sessionId = d.session_id;
  }

  _resumeFrom() {
    return this._lastSessionSequence || this.lastSequence;
  }
}
