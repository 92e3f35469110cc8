//! Cancel requests: a client that wants a running query stopped opens a
//! new connection and sends the process id and secret key its session was
//! given at start (`BackendKeyData`), as with Postgres.
//!
//! A request cancels the query running at that moment, if any, and never
//! a later one: a session that is idle when the request arrives carries on
//! as if none had come. A wrong secret is ignored, as Postgres ignores it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The sessions a cancel request may name, by process id.
#[derive(Default)]
pub struct Cancels {
    sessions: Mutex<HashMap<i32, (i32, Arc<Notify>)>>,
}

/// One session's key, removed from [`Cancels`] when dropped.
pub struct Key {
    cancels: Arc<Cancels>,
    /// The process id the session announces.
    pub pid: i32,
    /// The secret it announces.
    pub secret: i32,
    /// Woken by a request with this key.
    pub requested: Arc<Notify>,
}

impl Cancels {
    /// A new key: a random process id not in use and a random secret.
    pub fn register(self: &Arc<Self>) -> Key {
        let requested = Arc::new(Notify::new());
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let mut bytes = [0u8; 8];
            openssl::rand::rand_bytes(&mut bytes).ok();
            let [a, b, c, d, e, f, g, h] = bytes;
            let pid = i32::from_be_bytes([a & 0x7f, b, c, d]);
            let secret = i32::from_be_bytes([e, f, g, h]);
            if pid == 0 || sessions.contains_key(&pid) {
                continue;
            }
            sessions.insert(pid, (secret, requested.clone()));
            return Key {
                cancels: self.clone(),
                pid,
                secret,
                requested,
            };
        }
    }

    /// Cancels the query `pid` is running, when `secret` is its secret.
    pub fn cancel(&self, pid: i32, secret: i32) {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((s, requested)) = sessions.get(&pid) {
            if *s == secret {
                // Wakes a query waiting now; leaves no permit for a later one.
                requested.notify_waiters();
            }
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let mut sessions = self.cancels.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.remove(&self.pid);
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn a_request_cancels_the_waiting_query_only_with_the_right_secret() {
        let cancels = Arc::new(Cancels::default());
        let key = cancels.register();
        // The session is idle: nothing is waiting, so nothing is kept.
        cancels.cancel(key.pid, key.secret);
        let requested = key.requested.clone();
        let running = requested.notified();
        tokio::pin!(running);
        running.as_mut().enable();
        assert!(
            running.as_mut().now_or_never().is_none(),
            "an earlier request cancels a later query"
        );
        cancels.cancel(key.pid, key.secret ^ 1);
        assert!(running.as_mut().now_or_never().is_none(), "a wrong secret cancels");
        cancels.cancel(key.pid, key.secret);
        assert!(running.as_mut().now_or_never().is_some());
        let other = cancels.register();
        assert_ne!(other.pid, key.pid);
        drop(key);
        assert_eq!(cancels.sessions.lock().map(|s| s.len()).unwrap_or(0), 1);
    }
}
