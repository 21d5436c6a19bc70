//! Resuming, on this node, a session that another node held (it died, or the proxy sent
//! the reconnection elsewhere).
//!
//! The session's record in the broker (written at each subscription change, TTL
//! `resume_ttl`, refreshed while the session lives) gives its subject and subscriptions.
//! The client says where it is in each environment's stream (`last_event_ids`: the
//! `metadata.event_id` of the last event it received from each environment); for an
//! environment it names nothing for, the session's starting position is used. The
//! alerts after those positions that match the subscriptions are read back from the
//! streams and sent again, in order, then live delivery goes on: nothing is lost (as far
//! as the capped streams reach back) and nothing comes twice, because the client's
//! positions are exact and this node's read position is taken under its feed lock.
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use redis::Value;
use serde_json::{json, Value as Json};

use super::super::bus::Event;
use super::super::commands::code;
use super::super::envelope::control_prefix;
use super::super::events::Delivery;
use super::super::session_state::SessionShared;
use super::super::subscription::Subscription;
use super::{unix_s, wire, Broker, Outbound, Since, StreamId};

/// Entries read per XRANGE call.
const PAGE: usize = 1000;

/// Starts resuming `session_id` from the broker for this connection's session. Answers
/// with an `ack` (then the missed alerts) or a `RESUME_FAILED` error, from a task;
/// `on_failure` runs when it fails (the server counts a client error).
pub fn resume_from_broker(
    b: Arc<Broker>,
    session: &Arc<SessionShared>,
    session_id: String,
    last_sequence: u64,
    positions: HashMap<String, StreamId>,
    on_failure: impl FnOnce() + Send + 'static,
) {
    let session = session.clone();
    tokio::spawn(async move {
        let result = run(&b, &session, &session_id, last_sequence, &positions).await;
        if let Err(reason) = result {
            on_failure();
            session.push_control(control_prefix(
                "error",
                &json!({"error_code": code::RESUME_FAILED, "message": "Session cannot be resumed",
                        "details": {"reason": reason}}),
            ));
        }
    });
}

struct Record {
    subject: String,
    node_id: String,
    next_subscription: u32,
    /// (subscription id, the spec that recreates it)
    specs: Vec<(String, Json)>,
    since: Since,
}

fn parse_record(text: &str) -> Option<Record> {
    let v: Json = serde_json::from_str(text).ok()?;
    Some(Record {
        subject: v.get("subject")?.as_str()?.to_string(),
        node_id: v
            .get("node_id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        next_subscription: v.get("next_subscription")?.as_u64()? as u32,
        specs: v
            .get("subscriptions")?
            .as_array()?
            .iter()
            .map(|s| {
                Some((
                    s.get("subscription_id")?.as_str()?.to_string(),
                    s.get("spec")?.clone(),
                ))
            })
            .collect::<Option<Vec<_>>>()?,
        since: Since {
            positions: v
                .get("since")
                .and_then(Json::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), StreamId::parse(v.as_str()?)?)))
                        .collect()
                })
                .unwrap_or_default(),
            broker_ms: v.get("since_ms").and_then(Json::as_u64).unwrap_or(0),
        },
    })
}

async fn run(
    b: &Broker,
    session: &Arc<SessionShared>,
    session_id: &str,
    last_sequence: u64,
    positions: &HashMap<String, StreamId>,
) -> Result<(), String> {
    let key = b.keys.session(session_id);
    let unreachable = |e: redis::RedisError| format!("the broker is unreachable ({e}); retry");
    let text: Option<String> = b
        .run(redis::cmd("GET").arg(&key))
        .await
        .map_err(unreachable)?;
    let Some(text) = text else {
        return Err(
            "unknown or expired session (sessions can be resumed for the configured resume_ttl)"
                .into(),
        );
    };
    let record = parse_record(&text).ok_or("the session's record in the broker is unreadable")?;
    if record.subject != session.subject {
        return Err("the session belongs to another token subject".into());
    }
    // The subscriptions come back under this connection's token: one it no longer grants
    // fails the resume rather than widening what the client sees.
    let grant = session.state.lock().grant.clone();
    let mut subs = Vec::with_capacity(record.specs.len());
    for (id, spec) in &record.specs {
        let sub = Subscription::parse(id.clone(), spec, &grant).map_err(|e| {
            format!(
                "subscription {id} cannot be restored: {}: {}",
                e.field, e.reason
            )
        })?;
        subs.push(sub);
    }
    // Claim the record: of two nodes resuming the same session, one gets it.
    let claimed: Option<String> = b
        .run(redis::cmd("GETDEL").arg(&key))
        .await
        .map_err(unreachable)?;
    if claimed.is_none() {
        return Err("the session was already resumed".into());
    }
    let (cursors, all) = {
        let cursors = b.cursors.lock();
        let mut st = session.state.lock();
        if st.held.is_some() {
            return Err("a resume is already in progress on this connection".into());
        }
        // The ids the client knows stay (`sub_<n>`; n is also the queue's slot number).
        let mut spare = record.next_subscription.max(1);
        st.subscriptions = subs
            .into_iter()
            .map(|s| {
                let slot =
                    s.id.strip_prefix("sub_")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| {
                            spare += 1;
                            spare - 1
                        });
                (slot, Arc::<str>::from(s.id.as_str()), s)
            })
            .collect();
        let top = st
            .subscriptions
            .iter()
            .map(|(n, _, _)| n + 1)
            .max()
            .unwrap_or(1);
        st.next_subscription = spare.max(top);
        st.session_id = session_id.to_string();
        st.next_seq = st.next_seq.max(last_sequence + 1);
        st.held = Some(Vec::new());
        if !positions.is_empty() {
            st.floor = Some(positions.clone());
        }
        st.broker_since = Some(Arc::new(record.since.clone()));
        let all: Vec<Json> = st
            .subscriptions
            .iter()
            .map(|(_, _, s)| s.describe())
            .collect();
        (cursors.clone(), all)
    };
    // Which streams can hold alerts this session wants, and from where.
    let (wanted, starts) = {
        let st = session.state.lock();
        let alert_subs: Vec<&Subscription> = st
            .subscriptions
            .iter()
            .map(|(_, _, s)| s)
            .filter(|s| s.event_type.delivery() == Delivery::Alert)
            .collect();
        let mut wanted = Vec::new();
        let mut starts = serde_json::Map::new();
        for (env, to) in &cursors {
            let matches = alert_subs
                .iter()
                .any(|s| s.filters.environment_id.as_deref().is_none_or(|e| e == env));
            if !matches || !st.grant.allows(env) {
                continue;
            }
            let from = positions
                .get(env)
                .or_else(|| record.since.positions.get(env))
                .copied()
                .unwrap_or(StreamId {
                    ms: record.since.broker_ms.saturating_sub(1),
                    seq: u64::MAX,
                });
            starts.insert(env.clone(), Json::from(from.to_string()));
            if from < *to {
                wanted.push((env.clone(), from, *to));
            }
        }
        (wanted, starts)
    };
    let mut missed: Vec<Arc<Event>> = Vec::new();
    let mut lost = false;
    for (env, from, to) in wanted {
        match read_range(b, &env, from, to).await {
            Ok((events, trimmed)) => {
                lost |= trimmed;
                missed.extend(events.into_iter().map(Arc::new));
            }
            Err(_) => lost = true,
        }
    }
    missed.sort_by_key(|e| e.stream_id);
    let session_id_json = session_id.to_string();
    let from_node = record.node_id.clone();
    session.finish_broker_resume(&missed, |n, truncated| {
        control_prefix(
            "ack",
            &json!({
                "message_type": "resume",
                "status": "success",
                "session_id": session_id_json,
                "replayed": n,
                "alerts_lost": lost || truncated,
                "oldest_available_sequence": null,
                "active_subscriptions": all,
                "resumed_from_node": from_node,
                "replayed_after": starts,
            }),
        )
    });
    b.counters.resumed.fetch_add(1, Relaxed);
    b.save_session(session);
    let _ = b.tx.try_send(Outbound::Control(vec![
        ("k", "session_taken".into()),
        ("s", session_id.to_string()),
        ("n", b.config.node_id.clone()),
    ]));
    Ok(())
}

/// The alert events of `env`'s stream after `from` up to `to`, and whether entries after
/// `from` were already trimmed from the capped stream.
async fn read_range(
    b: &Broker,
    env: &str,
    from: StreamId,
    to: StreamId,
) -> redis::RedisResult<(Vec<Event>, bool)> {
    let key = b.keys.stream(env);
    // Entries after `from` may have been trimmed when the stream lost entries (it holds
    // fewer than were ever added) and its first entry is past `from`. (If the trim ended
    // exactly at `from`, nothing was lost but this still says so: it errs towards telling.)
    let info: Value = b.run(redis::cmd("XINFO").arg("STREAM").arg(&key)).await?;
    let info = wire::fields(&info);
    let int = |name: &str| {
        info.iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| match v {
                Value::Int(n) => Some(*n),
                v => wire::text(v)?.parse().ok(),
            })
    };
    let first = info
        .iter()
        .find(|(k, _)| *k == "first-entry")
        .and_then(|(_, v)| StreamId::parse(wire::text(wire::items(v).first()?)?));
    let length = int("length").unwrap_or(0);
    let shrunk = match int("entries-added") {
        Some(added) => added > length,
        None => length as usize >= b.config.stream_maxlen, // Redis before 7.0
    };
    let trimmed = shrunk && first.is_some_and(|f| f > from);
    let mut out = Vec::new();
    let mut start = from;
    let now_s = unix_s();
    loop {
        let page: Value = b
            .run(
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(format!("({start}"))
                    .arg(to.to_string())
                    .arg("COUNT")
                    .arg(PAGE),
            )
            .await?;
        let entries = wire::entries(&page);
        let n = entries.len();
        for (id, fields) in &entries {
            start = *id;
            let alert = fields.iter().any(|(k, v)| {
                *k == "t"
                    && wire::text(v)
                        .and_then(super::super::events::EventType::parse)
                        .is_some_and(|t| t.delivery() == Delivery::Alert)
            });
            if alert {
                if let Some(ev) = wire::event_from_entry(env, *id, fields, now_s) {
                    out.push(ev);
                }
            }
        }
        if n < PAGE || start >= to {
            return Ok((out, trimmed));
        }
    }
}
