//! The UIA session store: in memory, each session bound to one operation of one user, expiring
//! [`SESSION_LIFETIME`] after it was created, at most [`MAX_SESSIONS`] at a time.
//!
//! A session being worked on (a stage being checked, or the authorised operation running) is
//! taken out of the map and put back when done, so two requests can never both use it; the
//! [`Taken`] guard puts it back even if the request is cancelled half-way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ruma::OwnedUserId;

use super::Stage;

/// How long a client has to complete the stages.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Sessions kept at once; beyond this the oldest is forgotten.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// One user-interactive authentication in progress.
#[derive(Debug)]
pub(crate) struct Session {
    /// What the session may authorise, e.g. `DELETE /devices/ABC`.
    pub(crate) operation: String,
    /// Whom it authenticates (`None` for registration).
    pub(crate) user: Option<OwnedUserId>,
    /// Stages passed, in order.
    pub(crate) completed: Vec<Stage>,
    /// A registration token use reserved by the token stage, to be spent or given back.
    pub(crate) reserved_token: Option<String>,
    /// The parameters of the request that started the session, for the requests that go on
    /// with it and leave them out (registration: the spec lets later stages omit them).
    pub(crate) first_request: Option<serde_json::Value>,
    expires: Instant,
}

impl Session {
    pub(crate) fn new(operation: String, user: Option<OwnedUserId>) -> Self {
        Self {
            operation,
            user,
            completed: Vec::new(),
            reserved_token: None,
            first_request: None,
            expires: Instant::now() + SESSION_LIFETIME,
        }
    }
}

/// The store: cheap to clone, shared by every request.
#[derive(Clone, Default)]
pub struct UiaSessions {
    map: Arc<Mutex<HashMap<String, Session>>>,
}

impl std::fmt::Debug for UiaSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiaSessions")
            .field("sessions", &self.lock().len())
            .finish()
    }
}

/// A session taken out of the store; dropping the guard puts it back.
pub(crate) struct Taken {
    sessions: UiaSessions,
    pub(crate) id: String,
    session: Option<Session>,
}

impl Taken {
    pub(crate) fn session(&self) -> &Session {
        self.session
            .as_ref()
            .unwrap_or_else(|| unreachable!("present until dropped or consumed"))
    }

    pub(crate) fn session_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .unwrap_or_else(|| unreachable!("present until dropped or consumed"))
    }

    /// The operation it authorised is done: the session is spent.
    pub(crate) fn consume(mut self) -> Session {
        self.session
            .take()
            .unwrap_or_else(|| unreachable!("present until dropped or consumed"))
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.sessions.lock().insert(self.id.clone(), session);
        }
    }
}

impl UiaSessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a consistent map (every update is one call).
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Store a new session under a fresh id. Returns the id and the sessions evicted to make
    /// room (whose reserved tokens the caller gives back).
    pub(crate) fn insert(&self, id: String, session: Session) -> Vec<Session> {
        let mut map = self.lock();
        let mut evicted = Vec::new();
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            evicted.extend(map.remove(&oldest));
        }
        map.insert(id, session);
        evicted
    }

    /// Take a new session out right away (a request that starts with a stage).
    pub(crate) fn start_taken(&self, id: String, session: Session) -> Taken {
        Taken {
            sessions: self.clone(),
            id,
            session: Some(session),
        }
    }

    /// Take a live session out of the store, or `None` if it is unknown, expired or in use.
    pub(crate) fn take(&self, id: &str) -> Option<Taken> {
        let session = self.lock().remove(id)?;
        if session.expires <= Instant::now() {
            // Put back so the sweep hands its reserved token back.
            self.lock().insert(id.to_owned(), session);
            return None;
        }
        Some(Taken {
            sessions: self.clone(),
            id: id.to_owned(),
            session: Some(session),
        })
    }

    /// Remove and return the expired sessions.
    pub(crate) fn sweep(&self) -> Vec<Session> {
        let now = Instant::now();
        let mut map = self.lock();
        let expired: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        expired.iter().filter_map(|id| map.remove(id)).collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub(crate) fn expire_all(&self) {
        for session in self.lock().values_mut() {
            session.expires = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new("POST /x".into(), None)
    }

    #[test]
    fn taken_sessions_come_back_unless_consumed() {
        let sessions = UiaSessions::default();
        sessions.insert("a".into(), session());
        let taken = sessions.take("a").expect("live");
        assert!(sessions.take("a").is_none(), "in use: nobody else gets it");
        drop(taken);
        let taken = sessions.take("a").expect("put back");
        let _spent = taken.consume();
        assert!(sessions.take("a").is_none(), "consumed");
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn expired_sessions_are_refused_and_swept() {
        let sessions = UiaSessions::default();
        let mut s = session();
        s.reserved_token = Some("tok".into());
        sessions.insert("a".into(), s);
        sessions.insert("b".into(), session());
        sessions.expire_all();
        assert!(sessions.take("a").is_none());
        let swept = sessions.sweep();
        assert_eq!(swept.len(), 2);
        assert!(
            swept
                .iter()
                .any(|s| s.reserved_token.as_deref() == Some("tok"))
        );
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn the_store_is_bounded() {
        let sessions = UiaSessions::default();
        for i in 0..MAX_SESSIONS {
            assert!(sessions.insert(format!("s{i}"), session()).is_empty());
        }
        let evicted = sessions.insert("new".into(), session());
        assert_eq!(evicted.len(), 1);
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.take("new").is_some());
    }
}
