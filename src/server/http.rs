//! The HTTP side of the port: the WebSocket handshake at `/ws/v1` (token, client id,
//! subprotocol, compression), `/health` and `/metrics`.
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::backlog::SendQueue;
use super::connection;
use super::error::AuthError;
use super::session_state::SessionShared;
use super::shared::Shared;
use super::static_files;
use super::subscription::AppCompression;

/// The WebSocket endpoint's path.
pub const WS_PATH: &str = "/ws/v1";
/// The WebSocket subprotocol the server speaks (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "wifi-densepose-v1";

type Body = Full<Bytes>;

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    Ok(match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/health") => {
            let token = bearer(&req).or_else(|| query_param(&req, "token"));
            let mut r = health(&shared, token.as_deref());
            if req.method() == Method::HEAD {
                *r.body_mut() = Full::new(Bytes::new());
            }
            r
        }
        (&Method::GET, "/metrics") => {
            let text = metrics_text(&shared);
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (_, WS_PATH) => upgrade(req, shared),
        (&Method::GET | &Method::HEAD, p) if static_files::is_dashboard(p) => {
            static_files::serve(p, req.uri().query())
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "message": format!("no route {path}; the WebSocket endpoint is {WS_PATH}")}),
        ),
    })
}

/// Prometheus text: the server's metrics, and the broker's when one is configured.
pub fn metrics_text(shared: &Shared) -> String {
    let mut text = shared
        .metrics
        .render(&shared.bus.counters, shared.bus.sessions().len());
    use std::fmt::Write as _;
    let _ = write!(
        text,
        "# HELP wdp_sessions_detached Disconnected sessions held for resume.\n\
         # TYPE wdp_sessions_detached gauge\nwdp_sessions_detached {}\n\
         # HELP wdp_sessions_evicted_total Disconnected sessions forgotten to stay within \
         max_detached_sessions / max_detached_per_subject.\n\
         # TYPE wdp_sessions_evicted_total counter\nwdp_sessions_evicted_total {}\n",
        shared.detached.len(),
        shared.detached.evicted_total()
    );
    if let Some(b) = &shared.broker {
        text.push_str(&b.metrics());
    }
    text
}

/// `/health`: the environments are listed only as far as a valid token (header or
/// `?token=`) grants them; without one, only how many there are.
fn health(shared: &Shared, token: Option<&str>) -> Response<Body> {
    let grant = token
        .and_then(|t| shared.auth.verify(t).ok())
        .map(|id| id.environments);
    let all = shared.environments.read();
    let environments: Vec<&String> = match &grant {
        Some(g) => all.iter().filter(|e| g.allows(e)).collect(),
        None => Vec::new(),
    };
    let mut body = json!({
        "status": "ok",
        "uptime_s": shared.started.elapsed().as_secs_f64(),
        "started_at": shared.started_at,
        "connections": shared.metrics.connections_active.load(Relaxed),
        "environments": environments,
        "environment_count": all.len(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    drop(all);
    if let Some(b) = &shared.broker {
        // Degraded: serving, but only what this node produces (the broker is unreachable).
        if !b.is_up() {
            body["status"] = "degraded".into();
        }
        body["broker"] = b.health();
    }
    json_response(StatusCode::OK, body)
}

fn refuse(
    shared: &Shared,
    status: StatusCode,
    error: &str,
    reason: &str,
    message: String,
) -> Response<Body> {
    shared.metrics.handshake_refused.fetch_add(1, Relaxed);
    json_response(
        status,
        json!({"error": error, "reason": reason, "message": message}),
    )
}

/// Query parameters of the handshake, percent-decoded.
fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// A connection slot taken during a handshake; given back unless the connection starts.
struct HandshakeSlot(Option<Arc<Shared>>);

impl HandshakeSlot {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.metrics.connections_active.fetch_sub(1, Relaxed);
        }
    }
}

fn upgrade(mut req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        let mut r = refuse(
            &shared,
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "not_websocket",
            format!("{WS_PATH} speaks WebSocket only"),
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    }
    // Taken now and given back if the handshake fails (`Slot` in connection.rs gives
    // it back when the connection ends): checking and counting apart let 1,001 of 1,000
    // through.
    let open = shared.metrics.connections_active.fetch_add(1, Relaxed) as usize;
    let slot = HandshakeSlot(Some(shared.clone()));
    if open >= shared.config.max_connections {
        return refuse(
            &shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "server_full",
            "max_connections",
            format!("{open} connections are open, the configured maximum; retry later"),
        );
    }
    // The header wins over the query: proxies log URLs, so the header is the safer place.
    let token = bearer(&req)
        .or_else(|| query_param(&req, "token"))
        .unwrap_or_default();
    let identity = match shared.auth.verify(&token) {
        Ok(id) => id,
        Err(e) => {
            let status = if matches!(e, AuthError::BadKey(_)) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::UNAUTHORIZED
            };
            return refuse(&shared, status, "unauthorized", e.code(), e.to_string());
        }
    };
    let client_id = match query_param(&req, "client_id") {
        None => format!("client_{}", super::session_state::random_hex(8)),
        Some(id)
            if !id.is_empty()
                && id.chars().count() <= 128
                && id.chars().all(|c| !c.is_control()) =>
        {
            id
        }
        Some(_) => {
            return refuse(
                &shared,
                StatusCode::BAD_REQUEST,
                "bad_request",
                "invalid_client_id",
                "client_id must be 1 to 128 printable characters".into(),
            )
        }
    };
    let compression = match query_param(&req, "compression").as_deref() {
        None | Some("") => AppCompression::None,
        Some(c) => match AppCompression::parse(c) {
            Some(c) => c,
            None => {
                return refuse(
                    &shared,
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "invalid_compression",
                    format!("compression '{c}' is not one of: gzip, deflate, none"),
                )
            }
        },
    };
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    let subprotocol = offered.iter().any(|p| p == SUBPROTOCOL);
    if !offered.is_empty() && !subprotocol {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unsupported_subprotocol",
            format!("offered subprotocols {offered:?}; this server speaks '{SUBPROTOCOL}'"),
        );
    }
    // The reader enforces max_message_bytes itself, so it can close cleanly with 1009 and
    // a reason; yawc's own limit is a hard stop well above it.
    let hard_limit = shared
        .config
        .max_message_bytes
        .saturating_mul(16)
        .max(1 << 20);
    let mut options = yawc::Options::default()
        .with_max_payload_read(hard_limit)
        .with_max_read_buffer(hard_limit)
        // No UTF-8 check in yawc: it dropped the connection without a close frame; the
        // reader answers invalid UTF-8 with INVALID_MESSAGE and keeps the connection.
        .with_no_delay()
        // The writer hands yawc a batch of messages and flushes once (connection.rs); at
        // the default 8 KiB a batch of 1.7 KB pose frames went out in a write per five
        // frames, at this one in a single write (docs/performance.md).
        .with_backpressure_boundary(connection::WRITE_BATCH_BYTES);
    if shared.config.permessage_deflate && !offers_server_window_bits(&req) {
        options = options.with_low_latency_compression();
    }
    let (response, upgrade) = match yawc::WebSocket::upgrade_with_options(&mut req, options) {
        Ok(pair) => pair,
        Err(e) => {
            return refuse(
                &shared,
                StatusCode::BAD_REQUEST,
                "bad_request",
                "bad_handshake",
                format!("WebSocket handshake: {e}"),
            )
        }
    };
    let pmd = response
        .headers()
        .contains_key(header::SEC_WEBSOCKET_EXTENSIONS);
    let session = SessionShared::new(
        client_id,
        &identity,
        compression,
        shared.config.alert_queue_capacity,
        shared.config.alert_history,
        shared.config.alert_history_bytes,
    );
    if let Some(b) = &shared.broker {
        b.stamp(&session);
    }
    shared.bus.add_session(session.clone());
    let task_shared = shared.clone();
    let send_queue = req.extensions().get::<SendQueue>().copied();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(ws) => {
                slot.keep(); // connection::serve's Slot gives it back
                connection::serve(task_shared, ws, session, identity, pmd, send_queue).await
            }
            Err(_) => task_shared.bus.remove_session(session.id),
        }
    });
    let mut response = response.map(|_| Full::new(Bytes::new()));
    if subprotocol {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

/// Whether a permessage-deflate offer names `server_max_window_bits`. RFC 7692 (7.1.2.2)
/// lets a server accept such an offer only by echoing the parameter, and the WebSocket
/// library neither honours a smaller window than its own nor echoes it: the offer is
/// declined (the connection goes on uncompressed) rather than accepted silently. An
/// invalid value (`=7`) is declined the same way, as 7.1.2.2 requires.
fn offers_server_window_bits<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|offer| offer.trim_start().starts_with("permessage-deflate"))
        .any(|offer| {
            offer
                .split(';')
                .skip(1)
                .any(|p| p.trim().starts_with("server_max_window_bits"))
        })
}
