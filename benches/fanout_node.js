// The Node `ws` anchor of the fan-out benchmark (benches/fanout.py starts it; `ws` is
// installed by that script into a cache directory, never a project dependency).
//
// A plain `ws` 8 broadcast server: it serializes each event once and sends the same
// string to every open connection, as the `ws` README's broadcast example does. The
// payload is the Python bench's pose frame (read from a file), the schedule the same
// absolute one, the end marker the same.
//
//   node fanout_node.js PAYLOAD_JSON CLIENTS RATE DURATION EVENT DRAIN
"use strict";
const fs = require("fs");
const { performance } = require("perf_hooks");
const { WebSocketServer, WebSocket } = require("ws");

const [payloadPath, clients, rate, duration, event, drain] = process.argv.slice(2);
const template = JSON.parse(fs.readFileSync(payloadPath, "utf8"));
const nClients = Number(clients);
const nEvents = Math.floor(Number(rate) * Number(duration));
const interval = 1000 / Number(rate);

// Wall-clock nanoseconds with microsecond precision (the load client compares them with
// its own clock on the same machine): Date.now() alone has only milliseconds.
const nowNs = () => Math.round((performance.timeOrigin + performance.now()) * 1e6);

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });

function broadcast(text) {
  for (const ws of wss.clients) {
    if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }
}

function publishAll() {
  const start = performance.now();
  let i = 0;
  const tick = () => {
    // Every event that is due goes now (an absolute schedule: no drift when late).
    while (i < nEvents && performance.now() >= start + i * interval) {
      const data = { ...template, frame_id: i, pub_ns: nowNs() };
      broadcast(JSON.stringify({ type: event, timestamp: "", data, metadata: {} }));
      i += 1;
    }
    if (i < nEvents) {
      setTimeout(tick, Math.max(0, start + i * interval - performance.now()));
    } else {
      setTimeout(() => {
        broadcast(JSON.stringify({ type: event, data: { end: true, pub_ns: nowNs() } }));
        setTimeout(() => process.exit(0), Number(drain) * 1000);
      }, 500);
    }
  };
  tick();
}

wss.on("listening", () => {
  process.stdout.write(`ws://127.0.0.1:${wss.address().port}/\n`);
  const waitForClients = () => {
    if (wss.clients.size >= nClients) setTimeout(publishAll, 300);
    else setTimeout(waitForClients, 20);
  };
  waitForClients();
});
