//! The server's side of [`super::LocalNode`]: what the broker may do to this node (hand
//! events to its bus, learn environments, retire a session resumed elsewhere), and no more.
use super::super::bus::Event;
use super::super::session_state::CloseReason;
use super::super::shared::Shared;
use super::LocalNode;

impl LocalNode for Shared {
    fn deliver(&self, event: Event) {
        self.bus.publish(event);
    }

    fn environments(&self) -> Vec<String> {
        self.environments.read().iter().cloned().collect()
    }

    fn learn_environment(&self, env: &str) {
        if !self.environment_known(env) {
            self.environments.write().insert(env.to_string());
        }
    }

    fn retire_session(&self, session_id: &str) {
        let Some(s) = self.bus.find_session(session_id) else {
            return;
        };
        let mut st = s.state.lock();
        st.retired = true;
        if st.attached {
            st.closing.get_or_insert(CloseReason::ResumedElsewhere);
        }
        st.queue.clear();
        st.session_id = format!("retired_{}", s.id);
        drop(st);
        self.bus.remove_session(s.id);
        self.detached.remove(s.id);
        s.notify.notify_one();
    }

    fn live_sessions(&self) -> Vec<String> {
        self.bus
            .sessions()
            .iter()
            .filter_map(|s| {
                let st = s.state.lock();
                (!st.retired && !st.subscriptions.is_empty()).then(|| st.session_id.clone())
            })
            .collect()
    }
}
