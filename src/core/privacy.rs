//! Pseudonymisation of reviewer ids (PIPL de-identification): a keyed hash
//! (HMAC-SHA256). Only the pseudonym is kept in state; the id itself is
//! dropped as soon as the review is decoded.

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone)]
pub struct Pseudonymiser {
    /// HMAC keyed once; each pseudonym clones this state (no key schedule per id).
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <redacted> }")
    }
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Pseudonymiser { keyed }
    }

    /// A key that lives only as long as the process (for `demo`, `replay`).
    pub fn ephemeral() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Pseudonymiser::new(&key)
    }

    fn mac(&self, id: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The full pseudonym, hex: what may leave the process instead of the id.
    pub fn pseudonym(&self, id: &str) -> String {
        hex::encode(self.mac(id))
    }

    /// A compact 64-bit pseudonym for in-memory state (distinct-reviewer counts).
    pub fn short(&self, id: &str) -> u64 {
        let m = self.mac(id);
        u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_stable() {
        let a = Pseudonymiser::new(b"k1");
        let b = Pseudonymiser::new(b"k2");
        assert_eq!(a.pseudonym("user-1"), a.pseudonym("user-1"));
        assert_ne!(a.pseudonym("user-1"), b.pseudonym("user-1"));
        assert_ne!(a.short("user-1"), a.short("user-2"));
        assert!(!a.pseudonym("user-1").contains("user"));
        assert!(!format!("{a:?}").contains("k1"));
    }
}
