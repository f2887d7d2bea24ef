//! Contract v1.5, "Password resets without email": `POST /api/auth/reset`,
//! a new password with a code an admin issued (the admin route is in
//! `admin`). Children forget passwords and a free host sends no mail.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use storybook_store::Store;

use super::{MAX_LOGIN_BYTES, begin_attempt, check_password_length};
use crate::auth::{AuthRoute, hash_token, typed_reset_code};
use crate::client_addr::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, Events};
use crate::extract::JsonFields;
use crate::state::Auth;

/// What a refused code is told, whatever the reason (wrong, used,
/// expired, an unknown or deactivated login): nothing tells them apart.
fn bad_code() -> ApiError {
    ApiError::field("code", "is not a valid reset code for this login")
}

/// Accounts: `POST /api/auth/reset`.
pub(super) async fn reset(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(events): State<Arc<dyn Events>>,
    ClientAddr(client): ClientAddr,
    JsonFields(mut body): JsonFields,
) -> ApiResult<StatusCode> {
    // The body first: a short new password uses nothing up.
    let login = body.required_string("login");
    let code = body.required_string("code");
    let new_password = body.required_string("new_password");
    if let Some(password) = &new_password {
        check_password_length(&mut body, "new_password", password);
    }
    body.deny_unknown(&["login", "code", "new_password"]);
    body.finish()?;
    let (Some(login), Some(code), Some(new_password)) = (login, code, new_password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    auth.address_throttles.check(AuthRoute::Login, client)?;
    // Only wrong codes count against the address (v1.6).
    let bad_code = || {
        auth.address_throttles.login_failed(client);
        bad_code()
    };
    let login = login.trim().to_lowercase();
    if login.len() > MAX_LOGIN_BYTES {
        return Err(bad_code());
    }
    // Attempts count against the same lock as passwords.
    let (user, throttle_key) = begin_attempt(&store, &auth, &login).await?;
    let Some(user) = user.filter(|u| u.active) else {
        return Err(bad_code());
    };
    let code_hash = hash_token(&typed_reset_code(&code));
    // Checked before the new password is hashed, so a wrong code costs no
    // hash; used up only together with the new password (a code raced by
    // two requests is used once).
    if !store.reset_code_matches(user.id, &code_hash).await? {
        return Err(bad_code());
    }
    let password_hash = auth.passwords.hash(new_password).await?;
    if !store
        .reset_password(user.id, &code_hash, &password_hash)
        .await?
    {
        return Err(bad_code());
    }
    auth.login_throttle.succeeded(&throttle_key);
    auth.tokens.forget_user(user.id);
    events.send(Event::TokensRevoked { user_id: user.id }).await;
    Ok(StatusCode::NO_CONTENT)
}
