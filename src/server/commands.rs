//! Client-to-server messages: parsing, rate limits, and what each message does.
//!
//! Every message gets an answer: `ack` for what succeeded, `error` with a code for what did
//! not. Nothing a client sends can stop the server or other clients; the worst a client can
//! do is get its own connection closed (flood, oversized frame).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::config::RateLimits;
use super::envelope::{control_prefix, now_rfc3339};
use super::events::EventType;
use super::rate_limit::{window_name, Category, SlidingWindow};
use super::session_state::{CloseReason, ItemClass, SessionShared, SessionState};
use super::shared::Shared;
use super::subscription::{FieldError, Subscription};

/// Error codes on the wire. The spec names the first three; the others are ours
/// (docs/protocol.md).
pub mod code {
    pub const CONNECTION_ERROR: &str = "CONNECTION_ERROR";
    pub const SUBSCRIPTION_ERROR: &str = "SUBSCRIPTION_ERROR";
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    pub const INVALID_MESSAGE: &str = "INVALID_MESSAGE";
    pub const UNKNOWN_MESSAGE_TYPE: &str = "UNKNOWN_MESSAGE_TYPE";
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    pub const RESUME_FAILED: &str = "RESUME_FAILED";
}

/// Client message types the server understands.
pub const CLIENT_TYPES: [&str; 7] = [
    "subscribe",
    "unsubscribe",
    "update_subscription",
    "heartbeat",
    "connection_status",
    "disconnect",
    "resume",
];

/// One connection's view of the client: its rate limits and liveness.
pub struct ClientState {
    subscribe: SlidingWindow,
    heartbeat: SlidingWindow,
    general: SlidingWindow,
    flood: SlidingWindow,
    /// Rate-limit errors are answered at most once a second per category; the rest are
    /// counted and reported in the next one, so a flood is not answered by a flood.
    last_refusal_reply: [Option<Instant>; 3],
    suppressed: [u32; 3],
    pub connected_at: Instant,
    pub last_message_at: Option<String>,
}

impl ClientState {
    pub fn new(limits: &RateLimits) -> Self {
        ClientState {
            subscribe: SlidingWindow::new(limits.subscribe, Duration::ZERO),
            heartbeat: SlidingWindow::new(limits.heartbeat, limits.heartbeat_grace),
            general: SlidingWindow::new(limits.general, Duration::ZERO),
            flood: SlidingWindow::new(limits.flood, Duration::ZERO),
            last_refusal_reply: [None; 3],
            suppressed: [0; 3],
            connected_at: Instant::now(),
            last_message_at: None,
        }
    }
}

/// Queues an `error` message for the client.
pub fn send_error(
    shared: &Shared,
    session: &SessionShared,
    code: &str,
    message: &str,
    details: Value,
) {
    shared.metrics.client_errors.fetch_add(1, Relaxed);
    session.push_control(control_prefix(
        "error",
        &json!({"error_code": code, "message": message, "details": details}),
    ));
}

fn subscription_error(shared: &Shared, session: &SessionShared, e: &FieldError, extra: Value) {
    let mut details = json!({"field": e.field, "reason": e.reason});
    if let (Some(d), Some(x)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(x.clone());
    }
    send_error(
        shared,
        session,
        code::SUBSCRIPTION_ERROR,
        "Invalid subscription",
        details,
    );
}

/// Counts a client message of any kind and applies the flood limit. Returns a reason
/// when the connection must end.
pub fn count_message(
    shared: &Shared,
    session: &SessionShared,
    client: &mut ClientState,
    now: Instant,
) -> Option<CloseReason> {
    shared.metrics.client_messages.fetch_add(1, Relaxed);
    session.state.lock().stats.received += 1;
    client.last_message_at = Some(now_rfc3339());
    client.flood.check(now).err().map(|_| CloseReason::Flood)
}

/// A message that cannot be read (a binary frame, invalid UTF-8, not JSON, no string
/// `type`): counted, flood-limited and rate-limited like any other (general category),
/// and answered with `INVALID_MESSAGE` only while within the limit, so a flood of
/// garbage is not answered with a flood. Returns a reason when the connection must end.
pub fn handle_malformed(
    shared: &Shared,
    session: &SessionShared,
    client: &mut ClientState,
    message: &str,
    details: Value,
) -> Option<CloseReason> {
    let now = Instant::now();
    if let Some(reason) = count_message(shared, session, client, now) {
        return Some(reason);
    }
    if check_rate(shared, session, client, Category::General, now) {
        send_error(shared, session, code::INVALID_MESSAGE, message, details);
    }
    None
}

/// Handles one text message. Returns a reason when the connection must end.
pub fn handle_text(
    shared: &Arc<Shared>,
    session: &Arc<SessionShared>,
    client: &mut ClientState,
    text: &str,
) -> Option<CloseReason> {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return handle_malformed(
                shared,
                session,
                client,
                "Message is not valid JSON",
                json!({"reason": e.to_string(), "line": e.line(), "column": e.column()}),
            );
        }
    };
    let Some(kind) = msg.get("type").and_then(Value::as_str) else {
        return handle_malformed(
            shared,
            session,
            client,
            "Message must be a JSON object with a string `type`",
            json!({"field": "type", "reason": "missing or not a string"}),
        );
    };
    let now = Instant::now();
    if let Some(reason) = count_message(shared, session, client, now) {
        return Some(reason);
    }
    if !check_rate(shared, session, client, Category::for_message(kind), now) {
        return None;
    }
    let data = msg.get("data").cloned().unwrap_or(Value::Null);
    if !(data.is_null() || data.is_object()) {
        send_error(
            shared,
            session,
            code::INVALID_MESSAGE,
            "`data` must be an object",
            json!({"field": "data", "reason": "must be an object"}),
        );
        return None;
    }
    match kind {
        "subscribe" => subscribe(shared, session, &data),
        "unsubscribe" => unsubscribe(shared, session, &data),
        "update_subscription" => update_subscription(shared, session, &data),
        "heartbeat" => heartbeat(session, client),
        "connection_status" => session.push_control(control_prefix(
            "connection_status",
            &connection_status(shared, session, "connected"),
        )),
        "disconnect" => return Some(CloseReason::ClientRequested),
        "resume" => resume(shared, session, &data),
        other => send_error(
            shared,
            session,
            code::UNKNOWN_MESSAGE_TYPE,
            &format!("Unknown message type '{other}'"),
            json!({"type": other, "supported": CLIENT_TYPES}),
        ),
    }
    None
}

/// Applies the rate limit of `category`; on refusal answers (at most once a second).
fn check_rate(
    shared: &Shared,
    session: &SessionShared,
    client: &mut ClientState,
    category: Category,
    now: Instant,
) -> bool {
    let (window, idx) = match category {
        Category::Subscription => (&mut client.subscribe, 0),
        Category::Heartbeat => (&mut client.heartbeat, 1),
        Category::General => (&mut client.general, 2),
    };
    let Err(refusal) = window.check(now) else {
        return true;
    };
    shared.metrics.rate_limited.fetch_add(1, Relaxed);
    let recent = client.last_refusal_reply[idx]
        .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1));
    if recent {
        client.suppressed[idx] += 1;
        return false;
    }
    client.last_refusal_reply[idx] = Some(now);
    let suppressed = std::mem::take(&mut client.suppressed[idx]);
    let category_name = match category {
        Category::Subscription => "subscription",
        Category::Heartbeat => "heartbeat",
        Category::General => "general",
    };
    send_error(
        shared,
        session,
        code::RATE_LIMIT_EXCEEDED,
        "Message rate limit exceeded",
        json!({
            "category": category_name,
            "current_rate": refusal.current_rate,
            "limit": refusal.limit,
            "window": window_name(refusal.window),
            "retry_after": refusal.retry_after,
            "suppressed_errors": suppressed,
        }),
    );
    false
}

fn describe_all(st: &SessionState) -> Vec<Value> {
    st.subscriptions
        .iter()
        .map(|(_, _, s)| s.describe())
        .collect()
}

fn subscribe(shared: &Shared, session: &Arc<SessionShared>, data: &Value) {
    let Some(list) = data.get("subscriptions").and_then(Value::as_array) else {
        let e = FieldError {
            field: "subscriptions".into(),
            reason: "is required and must be a list".into(),
        };
        return subscription_error(shared, session, &e, json!({}));
    };
    if list.is_empty() {
        let e = FieldError {
            field: "subscriptions".into(),
            reason: "must not be empty".into(),
        };
        return subscription_error(shared, session, &e, json!({}));
    }
    let mut st = session.state.lock();
    if st.subscriptions.len() + list.len() > shared.config.max_subscriptions {
        drop(st);
        let e = FieldError {
            field: "subscriptions".into(),
            reason: format!(
                "at most {} subscriptions per connection",
                shared.config.max_subscriptions
            ),
        };
        return subscription_error(shared, session, &e, json!({}));
    }
    // All or nothing: a subscribe with one invalid entry adds none of them.
    let mut parsed = Vec::with_capacity(list.len());
    for (i, spec) in list.iter().enumerate() {
        let id = format!("sub_{}", st.next_subscription + i as u32);
        let result = Subscription::parse(id, spec, &st.grant)
            .and_then(|s| check_environment(shared, &st.grant, s));
        match result {
            Ok(s) => parsed.push(s),
            Err(mut e) => {
                drop(st);
                e.field = format!("subscriptions[{i}].{}", e.field);
                let is_grant = e.reason.starts_with("token does not grant");
                if is_grant {
                    return send_error(
                        shared,
                        session,
                        code::PERMISSION_DENIED,
                        "Subscription exceeds the token's environments",
                        json!({"field": e.field, "reason": e.reason, "subscription_index": i}),
                    );
                }
                return subscription_error(shared, session, &e, json!({"subscription_index": i}));
            }
        }
    }
    let occupancy = parsed
        .iter()
        .any(|s| s.event_type == EventType::OccupancyUpdate);
    let mut added = Vec::with_capacity(parsed.len());
    for sub in parsed {
        let slot = st.next_subscription;
        st.next_subscription += 1;
        added.push(sub.describe());
        st.subscriptions
            .push((slot, Arc::from(sub.id.as_str()), sub));
    }
    let all = describe_all(&st);
    drop(st);
    session.push_control(control_prefix(
        "ack",
        &json!({"message_type": "subscribe", "status": "success", "active_subscriptions": added, "all_subscriptions": all}),
    ));
    if occupancy {
        // The rooms' current occupancy now, not at their next change (docs/protocol.md).
        shared.bus.offer_retained(session);
    }
    save_to_broker(shared, session);
}

/// With a broker, the session's record follows its subscriptions, so that another node
/// can resume it.
fn save_to_broker(shared: &Shared, session: &SessionShared) {
    if let Some(b) = &shared.broker {
        b.save_session(session);
    }
}

fn check_environment(
    shared: &Shared,
    grant: &super::auth::EnvironmentGrant,
    sub: Subscription,
) -> Result<Subscription, FieldError> {
    if let Some(env) = &sub.filters.environment_id {
        if !shared.environment_known(env) {
            // Only the environments this token may see are named.
            let known: Vec<String> = shared
                .environments
                .read()
                .iter()
                .filter(|e| grant.allows(e))
                .cloned()
                .collect();
            return Err(FieldError {
                field: "filters.environment_id".into(),
                reason: format!("unknown environment '{env}' (known: {})", known.join(", ")),
            });
        }
    }
    Ok(sub)
}

fn unsubscribe(shared: &Shared, session: &Arc<SessionShared>, data: &Value) {
    let ids: Option<Vec<&str>> = data
        .get("subscription_ids")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_str).collect());
    let Some(ids) =
        ids.filter(|ids| !ids.is_empty() && ids.len() <= shared.config.max_subscriptions)
    else {
        let e = FieldError {
            field: "subscription_ids".into(),
            reason: format!(
                "is required and must be a list of 1 to {} subscription ids",
                shared.config.max_subscriptions
            ),
        };
        return subscription_error(shared, session, &e, json!({}));
    };
    let mut st = session.state.lock();
    if let Some(unknown) = ids
        .iter()
        .find(|id| !st.subscriptions.iter().any(|(_, s, _)| &**s == **id))
    {
        drop(st);
        let e = FieldError {
            field: "subscription_ids".into(),
            reason: format!("unknown subscription id '{unknown}'"),
        };
        return subscription_error(shared, session, &e, json!({"subscription_id": unknown}));
    }
    let removed_slots: Vec<u32> = st
        .subscriptions
        .iter()
        .filter(|(_, id, _)| ids.contains(&&**id))
        .map(|(slot, _, _)| *slot)
        .collect();
    st.subscriptions
        .retain(|(slot, _, _)| !removed_slots.contains(slot));
    // Frames of a removed subscription that still wait are no longer wanted.
    st.queue.retain(
        |o| !matches!(o.class, ItemClass::Droppable { sub } if removed_slots.contains(&sub)),
    );
    let all = describe_all(&st);
    drop(st);
    session.push_control(control_prefix(
        "ack",
        &json!({"message_type": "unsubscribe", "status": "success", "removed": ids, "active_subscriptions": all}),
    ));
    save_to_broker(shared, session);
}

fn update_subscription(shared: &Shared, session: &Arc<SessionShared>, data: &Value) {
    let Some(id) = data.get("subscription_id").and_then(Value::as_str) else {
        let e = FieldError {
            field: "subscription_id".into(),
            reason: "is required and must be a string".into(),
        };
        return subscription_error(shared, session, &e, json!({}));
    };
    // Decide under the lock, answer after it: replies take the same lock.
    let outcome: Result<Value, FieldError> = {
        let mut st = session.state.lock();
        let st = &mut *st;
        let grant = st.grant.clone();
        match st.subscriptions.iter_mut().find(|(_, s, _)| &**s == id) {
            None => Err(FieldError {
                field: "subscription_id".into(),
                reason: format!("unknown subscription id '{id}'"),
            }),
            Some((_, _, sub)) => {
                let before = (sub.filters.clone(), sub.throttle.clone());
                let result = sub
                    .update(data.get("filters"), data.get("throttle"), &grant)
                    .and_then(|()| match &sub.filters.environment_id {
                        Some(env) if !shared.environment_known(env) => Err(FieldError {
                            field: "filters.environment_id".into(),
                            reason: format!("unknown environment '{env}'"),
                        }),
                        _ => Ok(()),
                    });
                match result {
                    Ok(()) => Ok(sub.describe()),
                    Err(e) => {
                        (sub.filters, sub.throttle) = before;
                        Err(e)
                    }
                }
            }
        }
    };
    match outcome {
        Ok(described) => {
            session.push_control(control_prefix(
                "ack",
                &json!({"message_type": "update_subscription", "status": "success", "active_subscriptions": [described]}),
            ));
            save_to_broker(shared, session);
        }
        Err(e) if e.reason.starts_with("token does not grant") => send_error(
            shared,
            session,
            code::PERMISSION_DENIED,
            "Subscription exceeds the token's environments",
            json!({"field": e.field, "reason": e.reason, "subscription_id": id}),
        ),
        Err(e) => subscription_error(shared, session, &e, json!({"subscription_id": id})),
    }
}

fn heartbeat(session: &SessionShared, client: &ClientState) {
    session.push_control(control_prefix(
        "heartbeat",
        &json!({
            "client_id": session.client_id,
            "uptime": client.connected_at.elapsed().as_secs(),
            "last_message": client.last_message_at,
            "server_time": now_rfc3339(),
        }),
    ));
}

/// The connection_status payload.
pub fn connection_status(shared: &Shared, session: &SessionShared, status: &str) -> Value {
    let st = session.state.lock();
    let mut v = json!({
        "status": status,
        "client_id": session.client_id,
        "session_id": st.session_id,
        "connected_since": st.connected_since,
        "active_subscriptions": st.subscriptions.len(),
        "message_count": st.stats.sent,
        "messages_received": st.stats.received,
        "dropped": {
            "pose_frames": st.stats.dropped_frames,
            "limited_events": st.stats.dropped_limited,
        },
        "throttled": st.stats.throttled,
        "queue_length": st.queue.len(),
        "last_sequence": st.next_seq.saturating_sub(1),
        "heartbeat_interval_s": shared.config.heartbeat_interval.as_secs_f64(),
        "heartbeat_timeout_s": shared.config.heartbeat_timeout.as_secs_f64(),
        "compression": st.default_compression.as_str(),
    });
    if let Some(b) = &shared.broker {
        // Behind a proxy, which node serves this connection.
        v["node_id"] = b.config.node_id.clone().into();
    }
    v
}

/// Adopts a session that a previous connection left, and replays the alerts it missed.
/// With a broker, a session this node does not hold is resumed from the broker.
fn resume(shared: &Arc<Shared>, session: &Arc<SessionShared>, data: &Value) {
    let fail = |reason: &str| {
        send_error(
            shared,
            session,
            code::RESUME_FAILED,
            "Session cannot be resumed",
            json!({"reason": reason}),
        )
    };
    let Some(session_id) = data
        .get("session_id")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 64)
    else {
        return fail("`session_id` is required (a session id, at most 64 bytes)");
    };
    let Some(last_sequence) = data.get("last_sequence").and_then(Value::as_u64) else {
        return fail("`last_sequence` is required and must be a non-negative integer");
    };
    // Read only behind a broker: a single node ignores the field, as it always did.
    let positions = match shared.broker.is_some() {
        false => Default::default(),
        true => match last_event_ids(data) {
            Ok(p) => p,
            Err(reason) => return fail(reason),
        },
    };
    let Some(old) = shared
        .bus
        .find_session(session_id)
        .filter(|o| o.id != session.id)
    else {
        if shared.detached.was_evicted(session_id) {
            return send_error(
                shared,
                session,
                code::RESUME_FAILED,
                "Session cannot be resumed",
                json!({
                    "reason": "session_evicted: forgotten to make room for newer disconnected \
                               sessions (max_detached_sessions, max_detached_per_subject)",
                    "alerts_lost": true,
                }),
            );
        }
        if let Some(b) = shared.broker.clone() {
            if session.state.lock().session_id != session_id {
                let counted = shared.clone();
                return crate::server::broker::resume_from_broker(
                    b,
                    session,
                    session_id.to_string(),
                    last_sequence,
                    positions,
                    move || {
                        counted
                            .metrics
                            .client_errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    },
                );
            }
        }
        return fail(
            "unknown or expired session (sessions can be resumed for the configured resume_ttl)",
        );
    };
    if old.subject != session.subject {
        return fail("the session belongs to another token subject");
    }
    if let Err(reason) = take_over(&shared.bus, session, &old, last_sequence) {
        return fail(reason);
    }
    session.notify.notify_one();
    shared.bus.remove_session(old.id);
    shared.detached.remove(old.id);
    old.notify.notify_one();
    save_to_broker(shared, session);
}

/// Moves `old`'s subscriptions, sequence and alert log to `session` and queues the ack and
/// the replay of what the client missed (`last_sequence`).
///
/// Done while no event is being fanned out (`Bus::quiesced`): the bus offers an event to
/// each session in turn, so without it an event could be offered to the old session
/// (logged there, so replayed here) and then, the subscriptions having moved meanwhile,
/// to this one as a live event too: the client got it twice.
pub(super) fn take_over(
    bus: &super::bus::Bus,
    session: &Arc<SessionShared>,
    old: &Arc<SessionShared>,
    last_sequence: u64,
) -> Result<(), &'static str> {
    bus.quiesced(|| {
        let mut mine = session.state.lock();
        // try_lock: two connections resuming each other's sessions must not deadlock the bus.
        let Some(mut theirs) = old.state.try_lock_for(Duration::from_millis(50)) else {
            return Err("the session is busy; retry");
        };
        if theirs.retired {
            drop((mine, theirs));
            return Err("the session was already resumed");
        }
        // The same subject is not enough: a token granting fewer environments must not
        // take over a session (its logged alerts, its subscriptions) that saw more.
        if !mine.grant.covers(&theirs.grant) {
            drop((mine, theirs));
            return Err("this token does not grant every environment the session's token granted");
        }
        theirs.retired = true;
        if theirs.attached {
            theirs.closing.get_or_insert(CloseReason::ResumedElsewhere);
        }
        theirs.queue.clear();
        let mut taken_log = std::mem::take(&mut theirs.alert_log);
        mine.session_id = std::mem::replace(&mut theirs.session_id, format!("retired_{}", old.id));
        mine.subscriptions = std::mem::take(&mut theirs.subscriptions);
        mine.next_subscription = theirs.next_subscription;
        mine.next_seq = mine.next_seq.max(theirs.next_seq);
        mine.alerts_evicted = theirs.alerts_evicted;
        mine.alerts_evicted_max_seq = theirs.alerts_evicted_max_seq;
        mine.stats.dropped_frames += theirs.stats.dropped_frames;
        mine.stats.dropped_limited += theirs.stats.dropped_limited;
        drop(theirs);
        // The client has every alert up to `last_sequence` that was written to it; alerts
        // never written (left queued at a slow-consumer close, logged while detached) are
        // missed even when a later message (the `disconnect`) carried a higher sequence.
        let last_sequence = last_sequence.min(old.alerts_written.load(Relaxed));
        session.alerts_written.fetch_max(last_sequence, Relaxed);
        let lost = mine.alerts_evicted_max_seq > last_sequence;
        let oldest_available = taken_log.front().map(|o| o.seq);
        // Alerts the client saw stay in the log under their numbers; missed ones are sent
        // again under new numbers on this connection (sequence only ever increases), with
        // `replayed_from` giving the number they first had.
        let missed: Vec<_> = taken_log
            .iter()
            .filter(|o| o.seq > last_sequence)
            .cloned()
            .collect();
        taken_log.retain(|o| o.seq <= last_sequence);
        mine.alert_log_bytes = taken_log.iter().map(super::session_state::log_cost).sum();
        mine.alert_log = taken_log;
        let session_id = mine.session_id.clone();
        let all = describe_all(&mine);
        let ack = control_prefix(
            "ack",
            &json!({
                "message_type": "resume",
                "status": "success",
                "session_id": session_id,
                "replayed": missed.len(),
                "alerts_lost": lost,
                "oldest_available_sequence": oldest_available,
                "active_subscriptions": all,
            }),
        );
        // Queued before the lock is let go: the subscriptions are this session's from here,
        // and an alert published meanwhile must come after the ones replayed.
        session.push_control_locked(&mut mine, ack);
        session.replay_alerts_locked(&mut mine, missed);
        drop(mine);
        Ok(())
    })
}

/// `last_event_ids`: `{environment_id: event_id}`, the last `metadata.event_id` the client
/// received from each environment (a broker's resume positions). Optional.
fn last_event_ids(
    data: &Value,
) -> Result<std::collections::HashMap<String, crate::server::StreamId>, &'static str> {
    let mut out = std::collections::HashMap::new();
    match data.get("last_event_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) if m.len() > 1024 => {
            return Err("`last_event_ids` names at most 1024 environments")
        }
        Some(Value::Object(m)) => {
            for (env, id) in m {
                let id = id
                    .as_str()
                    .and_then(crate::server::StreamId::parse)
                    .ok_or("`last_event_ids` values must be event ids (\"<ms>-<n>\")")?;
                out.insert(env.clone(), id);
            }
        }
        Some(_) => return Err("`last_event_ids` must be an object {environment_id: event_id}"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::bus::{Bus, Event};
    use super::super::events::EventType;
    use super::*;

    fn session(subscribed: bool) -> Arc<SessionShared> {
        let specs = if subscribed {
            vec![json!({"event_type": "activity_event"})]
        } else {
            Vec::new()
        };
        super::super::session_state::session_with(&specs)
    }

    #[test]
    fn an_alert_published_during_a_take_over_is_delivered_once() {
        let bus = Arc::new(Bus::default());
        let old = session(true);
        let bystander = session(false);
        let new = session(false);
        for s in [&old, &bystander, &new] {
            bus.add_session(s.clone());
        }
        // The publish logs the alert on the old session, then waits at the bystander:
        // the moment between its offers to the old session and to the new one.
        let held = bystander.state.lock();
        let publisher = {
            let bus = bus.clone();
            std::thread::spawn(move || {
                bus.publish(Event::new(
                    EventType::ActivityEvent,
                    json!({"event_type": "fall_detected"}),
                    Some("ward".into()),
                ));
            })
        };
        while old.state.lock().alert_log.is_empty() {
            std::thread::yield_now();
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let resumer = {
            let (bus, old, new) = (bus.clone(), old.clone(), new.clone());
            std::thread::spawn(move || {
                take_over(&bus, &new, &old, 0).unwrap();
                let _ = done_tx.send(());
            })
        };
        // Before the fix the take-over finished here, and the publish then delivered the
        // alert to the new session live as well; now it waits for the publish.
        let _ = done_rx.recv_timeout(Duration::from_millis(300));
        drop(held);
        publisher.join().unwrap();
        resumer.join().unwrap();
        let st = new.state.lock();
        let alerts = st
            .queue
            .iter()
            .filter(|o| matches!(o.class, ItemClass::Alert | ItemClass::Replayed))
            .count();
        assert_eq!(alerts, 1, "the alert once (replayed), not again live");
    }
}
