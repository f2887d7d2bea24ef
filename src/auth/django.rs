//! Django's password hashes, so that users moving in from a Django
//! deployment keep their passwords: `pbkdf2_sha256$…` (Django's default),
//! `pbkdf2_sha1$…`, and `argon2$argon2id$…` (Django's Argon2 form: the
//! word `argon2` in front of a standard PHC string). A hash is checked as
//! stored and replaced by this server's Argon2id on the first successful
//! sign-in (`accounts` does that). Anything else (Django's unusable `!…`,
//! another hasher) checks no password and matches nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The most PBKDF2 rounds a stored hash may ask for: the work one sign-in
/// may cost is bounded (Django 5.2's default is 1,000,000). A hash asking
/// for more is unusable, as the contract says.
pub const MAX_PBKDF2_ROUNDS: u32 = 5_000_000;

/// The hash functions Django's PBKDF2 hashers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Hash {
    Sha256,
    Sha1,
}

/// A stored password hash, as read.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredHash<'a> {
    /// A PHC string (`$argon2id$v=19$…`): this server's, or Django's with
    /// its `argon2` prefix cut.
    Argon2(&'a str),
    /// Django's PBKDF2: `<algorithm>$<rounds>$<salt>$<base64 digest>`; the
    /// salt is the text between the `$`s, used as its bytes.
    Pbkdf2 {
        hash: Pbkdf2Hash,
        rounds: u32,
        salt: &'a str,
        digest: Vec<u8>,
    },
    /// Cannot sign in: Django's unusable `!…`, a PBKDF2 hash asking for too
    /// many rounds, or a format this server does not know.
    Unusable,
}

impl<'a> StoredHash<'a> {
    pub fn parse(stored: &'a str) -> Self {
        if stored.starts_with("$argon2") {
            return Self::Argon2(stored);
        }
        if let Some(phc) = stored.strip_prefix("argon2$")
            && phc.starts_with("argon2")
        {
            // Django writes `argon2$argon2id$v=19$…`: the PHC string is the
            // rest, with its leading `$` back.
            return Self::Argon2(&stored["argon2".len()..]);
        }
        let mut parts = stored.split('$');
        let hash = match parts.next() {
            Some("pbkdf2_sha256") => Pbkdf2Hash::Sha256,
            Some("pbkdf2_sha1") => Pbkdf2Hash::Sha1,
            _ => return Self::Unusable,
        };
        let (Some(rounds), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Self::Unusable;
        };
        let Ok(rounds) = rounds.parse::<u32>() else {
            return Self::Unusable;
        };
        let Ok(digest) = STANDARD.decode(digest) else {
            return Self::Unusable;
        };
        let expected_len = match hash {
            Pbkdf2Hash::Sha256 => 32,
            Pbkdf2Hash::Sha1 => 20,
        };
        if rounds == 0
            || rounds > MAX_PBKDF2_ROUNDS
            || salt.is_empty()
            || digest.len() != expected_len
        {
            return Self::Unusable;
        }
        Self::Pbkdf2 {
            hash,
            rounds,
            salt,
            digest,
        }
    }
}

/// Whether `password` matches a Django PBKDF2 hash: the digest is computed
/// (CPU-bound: run it off the async workers) and compared in time that
/// does not depend on where the bytes differ.
pub fn pbkdf2_matches(
    password: &str,
    hash: Pbkdf2Hash,
    rounds: u32,
    salt: &str,
    digest: &[u8],
) -> bool {
    let mut computed = [0u8; 32];
    let computed = match hash {
        Pbkdf2Hash::Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                password.as_bytes(),
                salt.as_bytes(),
                rounds,
                &mut computed,
            );
            &computed[..]
        }
        Pbkdf2Hash::Sha1 => {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
                password.as_bytes(),
                salt.as_bytes(),
                rounds,
                &mut computed[..20],
            );
            &computed[..20]
        }
    };
    computed.len() == digest.len()
        && computed
            .iter()
            .zip(digest)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// Whether a stored hash is already this server's own (Argon2id with its
/// PHC prefix), so a sign-in does not replace it.
pub fn is_native(stored: &str) -> bool {
    stored.starts_with("$argon2id$")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with Python's `hashlib.pbkdf2_hmac` (what Django calls),
    /// so the check is against an independent implementation.
    #[test]
    fn django_pbkdf2_hashes_match_their_passwords_only() {
        let sha256 = "pbkdf2_sha256$1000$somesalt$d95fCAdUq+42g8C30cwq17gi/cXEmkClKwz3oh3Hnmc=";
        let sha1 = "pbkdf2_sha1$1000$somesalt$JJZg7Pe+Vcm0+PYEXdOLHfnCDt0=";
        for (stored, algorithm) in [(sha256, Pbkdf2Hash::Sha256), (sha1, Pbkdf2Hash::Sha1)] {
            let StoredHash::Pbkdf2 {
                hash,
                rounds,
                salt,
                digest,
            } = StoredHash::parse(stored)
            else {
                panic!("{stored} is a PBKDF2 hash");
            };
            assert_eq!((hash, rounds, salt), (algorithm, 1000, "somesalt"));
            assert!(
                pbkdf2_matches("s3cret pass", hash, rounds, salt, &digest),
                "{stored}"
            );
            assert!(!pbkdf2_matches("s3cret pasS", hash, rounds, salt, &digest));
        }
    }

    #[test]
    fn other_forms_are_argon2_or_unusable() {
        assert_eq!(
            StoredHash::parse("argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA"),
            StoredHash::Argon2("$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA")
        );
        assert_eq!(
            StoredHash::parse("$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA"),
            StoredHash::Argon2("$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA")
        );
        let too_many = format!(
            "pbkdf2_sha256${}$salt$d95fCAdUq+42g8C30cwq17gi/cXEmkClKwz3oh3Hnmc=",
            MAX_PBKDF2_ROUNDS + 1
        );
        for unusable in [
            "!Xk2jLq9unusable",
            "",
            "md5$salt$abc",
            "bcrypt_sha256$$2b$12$abc",
            "pbkdf2_sha256$abc$salt$d95fCAdUq+42g8C30cwq17gi/cXEmkClKwz3oh3Hnmc=",
            "pbkdf2_sha256$1000$salt$not base64!",
            "pbkdf2_sha256$1000$salt$YWJj",
            "pbkdf2_sha256$1000$$d95fCAdUq+42g8C30cwq17gi/cXEmkClKwz3oh3Hnmc=",
            too_many.as_str(),
        ] {
            assert_eq!(
                StoredHash::parse(unusable),
                StoredHash::Unusable,
                "{unusable}"
            );
        }
        assert!(is_native("$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA"));
        assert!(!is_native(
            "argon2$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA"
        ));
    }
}
