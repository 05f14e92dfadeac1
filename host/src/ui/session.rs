//! Dashboard sessions: a login exchanges an API token for a random session id, kept by the
//! browser in an `HttpOnly; SameSite=Strict` cookie. The server keeps only the id's SHA-256
//! digest (a leaked memory dump or log holds no usable cookie and never the token), the
//! session's CSRF token and when it expires. Sessions live in the process: a restart logs
//! everyone out, which a token brings back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::serve::Tokens;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "weir_session";
/// How long a session lasts from its login unless the server says otherwise.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once. Past it the one closest to expiring goes: a flood of logins with
/// a valid token costs bounded memory.
pub const MAX_SESSIONS: usize = 10_000;

/// Who a request comes from, as the pages and the CSRF check see it.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    /// The token forms must carry back.
    pub csrf: String,
    /// Logged in through a session (so the page offers to log out).
    pub session: bool,
    /// Authenticated by an `Authorization` header, which a browser never sends on its own
    /// to another site's forms: no CSRF token needed.
    pub bearer: bool,
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// The live sessions and what they are checked against.
pub(crate) struct Sessions {
    tokens: Tokens,
    lifetime: Duration,
    /// The CSRF token of an open dashboard (no tokens configured): one per process, so a
    /// page on another site, which cannot read ours, cannot post to it either.
    open_csrf: String,
    live: Mutex<HashMap<[u8; 32], Session>>,
}

/// 32 random bytes, hex: a session id or a CSRF token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    hex::encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub(crate) fn new(tokens: Tokens, lifetime: Duration) -> Self {
        Self {
            tokens,
            lifetime,
            open_csrf: random_token(),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the dashboard is open to anyone who reaches it (no tokens configured).
    pub(crate) fn open(&self) -> bool {
        !self.tokens.required()
    }

    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The viewer of an open dashboard, or of a request with a valid bearer token.
    pub(crate) fn without_session(&self, bearer: bool) -> Viewer {
        Viewer {
            csrf: self.open_csrf.clone(),
            session: false,
            bearer,
        }
    }

    /// Whether `token` is one of the API tokens.
    pub(crate) fn accepts(&self, token: &str) -> bool {
        self.tokens.allows(token)
    }

    /// A new session for a valid `token`; returns the cookie value, or `None` if the token
    /// is not accepted.
    pub(crate) fn login(&self, token: &str, now: Instant) -> Option<String> {
        if !self.tokens.allows(token) {
            return None;
        }
        let id = random_token();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| s.expires > now);
        }
        if live.len() >= MAX_SESSIONS
            && let Some(soonest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(key, _)| *key)
        {
            live.remove(&soonest);
        }
        live.insert(
            digest(&id),
            Session {
                csrf: random_token(),
                expires: now + self.lifetime,
            },
        );
        Some(id)
    }

    /// The viewer holding session cookie `id`, if the session exists and has not expired
    /// (an expired one is forgotten).
    pub(crate) fn find(&self, id: &str, now: Instant) -> Option<Viewer> {
        let key = digest(id);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(&key) {
            Some(session) if session.expires > now => Some(Viewer {
                csrf: session.csrf.clone(),
                session: true,
                bearer: false,
            }),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of cookie `id` (nothing if there is none).
    pub(crate) fn logout(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.remove(&digest(id));
    }
}

/// Whether a form's `presented` CSRF token is the viewer's, compared in constant time.
pub(crate) fn csrf_matches(viewer: &Viewer, presented: &str) -> bool {
    viewer.csrf.len() == presented.len()
        && bool::from(viewer.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(lifetime: Duration) -> Sessions {
        Sessions::new(Tokens::new(["right"]), lifetime)
    }

    #[test]
    fn a_session_lasts_its_lifetime_and_no_longer() {
        let sessions = sessions(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(sessions.login("wrong", t0).is_none());
        let id = sessions.login("right", t0).unwrap();
        let viewer = sessions.find(&id, t0 + Duration::from_secs(59)).unwrap();
        assert!(viewer.session && !viewer.bearer);
        assert!(sessions.find(&id, t0 + Duration::from_secs(60)).is_none());
        // Once expired it is gone, even for a clock that went back.
        assert!(sessions.find(&id, t0).is_none());
    }

    #[test]
    fn each_session_has_its_own_csrf_token_and_logout_ends_it() {
        let sessions = sessions(Duration::from_secs(60));
        let t0 = Instant::now();
        let (a, b) = (
            sessions.login("right", t0).unwrap(),
            sessions.login("right", t0).unwrap(),
        );
        assert_ne!(a, b);
        let (va, vb) = (
            sessions.find(&a, t0).unwrap(),
            sessions.find(&b, t0).unwrap(),
        );
        assert_ne!(va.csrf, vb.csrf);
        assert!(csrf_matches(&va, &va.csrf.clone()));
        assert!(!csrf_matches(&va, &vb.csrf));
        assert!(!csrf_matches(&va, ""));
        sessions.logout(&a);
        assert!(sessions.find(&a, t0).is_none());
        assert!(sessions.find(&b, t0).is_some());
    }

    #[test]
    fn past_the_cap_the_session_closest_to_expiring_goes() {
        let sessions = sessions(Duration::from_secs(3600));
        let t0 = Instant::now();
        let first = sessions.login("right", t0).unwrap();
        for n in 1..MAX_SESSIONS {
            sessions.login("right", t0 + Duration::from_millis(n as u64));
        }
        let later = t0 + Duration::from_secs(1);
        assert!(sessions.find(&first, later).is_some());
        sessions.login("right", later).unwrap();
        assert!(sessions.find(&first, later).is_none(), "the oldest went");
        assert_eq!(sessions.live.lock().unwrap().len(), MAX_SESSIONS);
    }
}
