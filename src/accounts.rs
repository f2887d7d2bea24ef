//! Account rules that hold wherever an account is made (the API, the
//! `create-admin` command): what a username, an email and a password may
//! be, and the making of the first admin.

use storybook_store::{NewUser, Role, Store, User};

use crate::validate::char_len;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer passwords are refused rather than hashed: bounded work per request.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Whether `username` (already lowercased) is 3–30 of `[a-z0-9_]`.
pub fn is_valid_username(username: &str) -> bool {
    (3..=30).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A plausible address: one `@`, something before it, a dotted domain
/// after it, no spaces. Deliverability is not our business.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `storybook create-admin`: the same rules as registration, role `admin`.
pub async fn create_admin(
    store: &Store,
    username: &str,
    email: &str,
    password: String,
) -> Result<User, String> {
    let username = username.to_lowercase();
    if !is_valid_username(&username) {
        return Err("username must be 3 to 30 of a-z, 0-9 and _".into());
    }
    if !is_valid_email(email) {
        return Err("email must be an email address".into());
    }
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&char_len(&password)) {
        return Err(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        ));
    }
    let passwords = crate::auth::Passwords::new(&crate::config::Limits::default());
    let password_hash = passwords.hash(password).await.map_err(|e| e.to_string())?;
    store
        .create_user(&NewUser {
            username: username.clone(),
            email: email.trim().to_owned(),
            password_hash,
            display_name: username,
            role: Role::Admin,
        })
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(is_valid_username("alice"));
        assert!(is_valid_username("a_1"));
        assert!(!is_valid_username("al"));
        assert!(!is_valid_username("alice smith"));
        assert!(!is_valid_username(&"a".repeat(31)));
        assert!(!is_valid_username("élise"));
    }

    #[test]
    fn emails() {
        assert!(is_valid_email("a@b.co"));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("@b.co"));
        assert!(!is_valid_email("a b@c.co"));
        assert!(!is_valid_email("a@@b.co"));
    }
}
