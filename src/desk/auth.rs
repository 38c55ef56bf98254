//! Who may use the desk: password hashes (argon2id), session and CSRF
//! tokens, and the login throttle.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest password accepted (argon2 takes any length; a megabyte of
/// password would only cost time).
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 10;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches `hash`. A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that a wrong
/// name takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never a user's").unwrap_or_default())
}

/// A fresh random token (256 bits), URL-safe.
pub fn token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What the store keeps of a session token: its SHA-256, so that a copy of
/// the store opens no session.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `bytes` random bytes from the OS, in hex.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A pseudonym for an inspector on outcomes: random, never derived from
/// the name.
pub fn pseudonym() -> String {
    format!("insp-{}", random_hex(6))
}

/// Failed logins per key (a user name, a client address). After
/// [`Throttle::FREE_FAILURES`] failures within the window, each further
/// attempt must wait, twice as long after each failure, up to
/// [`Throttle::MAX_WAIT`]. The table is bounded: when full, the entries
/// longest quiet are dropped.
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(10_000)
    }
}

impl Throttle {
    pub const FREE_FAILURES: u32 = 5;
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    pub const FIRST_WAIT: Duration = Duration::from_secs(30);
    pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

    pub fn new(capacity: usize) -> Throttle {
        Throttle {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// How long `keys` must still wait before another attempt (zero: may try).
    pub fn wait(&self, keys: &[&str], now: Instant) -> Duration {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| entries.get(*k))
            .filter_map(|e| e.blocked_until)
            .map(|t| t.saturating_duration_since(now))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    pub fn failed(&self, keys: &[&str], now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() + keys.len() > self.capacity {
            entries.retain(|_, e| now.saturating_duration_since(e.last) < Self::WINDOW);
            while entries.len() + keys.len() > self.capacity {
                let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                entries.remove(&oldest);
            }
        }
        for k in keys {
            let e = entries.entry((*k).to_owned()).or_insert(Entry {
                failures: 0,
                last: now,
                blocked_until: None,
            });
            if now.saturating_duration_since(e.last) >= Self::WINDOW {
                e.failures = 0;
                e.blocked_until = None;
            }
            e.failures += 1;
            e.last = now;
            if e.failures >= Self::FREE_FAILURES {
                let doublings = (e.failures - Self::FREE_FAILURES).min(10);
                let wait = (Self::FIRST_WAIT * 2u32.pow(doublings)).min(Self::MAX_WAIT);
                e.blocked_until = Some(now + wait);
            }
        }
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn succeeded(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn five_failures_make_the_next_attempt_wait_longer_each_time() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..4 {
            t.failed(&["u:li"], now);
        }
        assert_eq!(t.wait(&["u:li"], now), Duration::ZERO);
        t.failed(&["u:li"], now);
        assert_eq!(t.wait(&["u:li"], now), Throttle::FIRST_WAIT);
        t.failed(&["u:li"], now);
        assert_eq!(t.wait(&["u:li"], now), Throttle::FIRST_WAIT * 2);
        // Another user is not slowed.
        assert_eq!(t.wait(&["u:wang"], now), Duration::ZERO);
        // The wait ends.
        assert_eq!(
            t.wait(&["u:li"], now + Throttle::FIRST_WAIT * 2),
            Duration::ZERO
        );
    }

    #[test]
    fn the_table_stays_within_its_capacity() {
        let t = Throttle::new(100);
        let now = Instant::now();
        for i in 0..10_000 {
            t.failed(&[&format!("ip:{i}")], now + Duration::from_millis(i));
        }
        assert!(t.len() <= 100);
        // The newest are kept.
        t.failed(&["ip:9999"], now + Duration::from_secs(20));
        assert!(t.len() <= 100);
    }

    #[test]
    fn tokens_are_distinct_and_stored_hashed() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
