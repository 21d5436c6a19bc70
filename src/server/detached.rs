//! The disconnected sessions held for resume, capped globally and per token subject.
//!
//! A session whose connection broke stays resumable for `resume_ttl` with its alert log.
//! Without a cap one token could connect, subscribe and drop thousands of times and make
//! the server hold every session (and fan each event out to all of them). Past
//! `max_detached_sessions`, or `max_detached_per_subject` for one subject, the session
//! disconnected longest ago is forgotten; a resume of it is told why.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::session_state::SessionShared;

/// Evicted session ids remembered so their resume can say why it failed.
const EVICTED_MEMORY: usize = 4096;

#[derive(Default)]
pub struct Detached {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Oldest detach first.
    order: VecDeque<Arc<SessionShared>>,
    per_subject: HashMap<String, usize>,
    evicted: VecDeque<String>,
    evicted_total: u64,
}

impl Inner {
    fn take(&mut self, pos: usize) -> Arc<SessionShared> {
        let s = self.order.remove(pos).expect("a position in the queue");
        if let Some(n) = self.per_subject.get_mut(&s.subject) {
            *n -= 1;
            if *n == 0 {
                self.per_subject.remove(&s.subject);
            }
        }
        s
    }
}

impl Detached {
    /// Records a session that has just been detached, and returns the sessions to forget
    /// to stay within the caps (the caller retires them; never one holding a lock here).
    /// Call without holding any session's state lock.
    pub fn add(
        &self,
        session: Arc<SessionShared>,
        max_total: usize,
        max_per_subject: usize,
    ) -> Vec<Arc<SessionShared>> {
        let mut inner = self.inner.lock();
        if inner.order.iter().any(|s| s.id == session.id) {
            return Vec::new();
        }
        *inner
            .per_subject
            .entry(session.subject.clone())
            .or_default() += 1;
        let subject = session.subject.clone();
        inner.order.push_back(session);
        let mut out = Vec::new();
        while inner.per_subject.get(&subject).copied().unwrap_or(0) > max_per_subject {
            let pos = inner
                .order
                .iter()
                .position(|s| s.subject == subject)
                .expect("a subject with a count has a session");
            out.push(inner.take(pos));
        }
        while inner.order.len() > max_total {
            out.push(inner.take(0));
        }
        for s in &out {
            let id = s.state.lock().session_id.clone();
            inner.evicted.push_back(id);
            if inner.evicted.len() > EVICTED_MEMORY {
                inner.evicted.pop_front();
            }
            inner.evicted_total += 1;
        }
        out
    }

    /// Forgets a session (resumed, expired, ended).
    pub fn remove(&self, id: u64) {
        let mut inner = self.inner.lock();
        if let Some(pos) = inner.order.iter().position(|s| s.id == id) {
            inner.take(pos);
        }
    }

    /// Whether `session_id` was forgotten to keep within the caps (recently).
    pub fn was_evicted(&self, session_id: &str) -> bool {
        self.inner.lock().evicted.iter().any(|s| s == session_id)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().order.len()
    }

    pub fn evicted_total(&self) -> u64 {
        self.inner.lock().evicted_total
    }
}
