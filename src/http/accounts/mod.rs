//! Contract section "Accounts": registration, login, logout, the signed-in
//! user's profile and settings, and public profiles.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Value, json};
use storybook_store::{NewUser, Role, Store, StoreError, User};

use super::views::user_json;
use super::{ApiRouter, Doc};
use crate::accounts::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, is_valid_email, is_valid_username};
use crate::auth::{AuthRoute, django, hash_token, new_token};
use crate::client_addr::ClientAddr;
use crate::config::Limits;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, Events};
use crate::extract::{ApiPath, AuthUser, JsonFields, bearer_token};
use crate::state::{Auth, Caches, Tools};
use crate::validate::{Fields, char_len, check_profanity};

mod reset;
mod settings;
use settings::{settings, update_settings};

const MAX_BIO_CHARS: usize = 500;
const MAX_DISPLAY_NAME_CHARS: usize = 50;
/// The longest login worth looking up: an email address is at most 254
/// bytes (RFC 5321), a username 30.
pub(super) const MAX_LOGIN_BYTES: usize = 254;

pub fn router() -> ApiRouter {
    ApiRouter::new("accounts")
        .post(
            "/api/auth/register",
            register,
            Doc::new("Create an account; answers a token and the user. Throttled per client address (429)")
                .body("Register")
                .returns(201, Some("Auth"))
                .errors(&[409, 429]),
        )
        .post(
            "/api/auth/login",
            login,
            Doc::new(
                "Sign in with username or email; five failures in 60 s lock the account for 60 s",
            )
            .body("Login")
            .returns(200, Some("Auth"))
            .errors(&[401, 429]),
        )
        .post(
            "/api/auth/reset",
            reset::reset,
            Doc::new(
                "Set a new password with a reset code an admin issued (single use); every token \
                 of the user stops working. A wrong, used or expired code, or an unknown login, \
                 is 422 naming code; attempts count against the login lock and throttle (429)",
            )
            .body("PasswordReset")
            .returns(204, None)
            .errors(&[429]),
        )
        .post(
            "/api/auth/logout",
            logout,
            Doc::new("Revoke the token used for this request")
                .user()
                .returns(204, None),
        )
        .post(
            "/api/auth/logout-all",
            logout_all,
            Doc::new(
                "Sign out everywhere: every token of the user, this one included, stops working",
            )
            .user()
            .returns(204, None),
        )
        .post(
            "/api/me/password",
            change_password,
            Doc::new(
                "Change the password; every other token stops working, this one stays. A wrong \
                 current_password is 422; wrong ones count against the login lock (429)",
            )
            .user()
            .body("PasswordChange")
            .returns(204, None)
            .errors(&[429]),
        )
        .get(
            "/api/me",
            me,
            Doc::new("The signed-in user, with email and settings")
                .user()
                .returns(200, Some("Me")),
        )
        .patch(
            "/api/me",
            update_me,
            Doc::new("Change display name and bio")
                .user()
                .body("ProfileUpdate")
                .returns(200, Some("Me")),
        )
        .get(
            "/api/me/settings",
            settings,
            Doc::new("The signed-in user's settings")
                .user()
                .returns(200, Some("Settings")),
        )
        .patch(
            "/api/me/settings",
            update_settings,
            Doc::new("Change some settings; unknown keys are 422")
                .user()
                .body("Settings")
                .returns(200, Some("Settings")),
        )
        .get(
            "/api/users/{username}",
            profile,
            Doc::new("A public profile with the number of published stories")
                .returns(200, Some("Profile"))
                .errors(&[404]),
        )
}

/// The signed-in user as `/api/me` shows them: with email and settings.
fn me_json(user: &User) -> Value {
    let mut value = user_json(user, true);
    value["settings"] = json!(user.settings);
    value
}

/// A new password is 8 to 1,024 characters (longer ones are refused rather
/// than hashed: bounded work per request).
pub(super) fn check_password_length(body: &mut Fields, field: &str, password: &str) {
    let length = char_len(password);
    if length < MIN_PASSWORD_CHARS {
        body.reject(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        );
    } else if length > MAX_PASSWORD_CHARS {
        body.reject(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        );
    }
}

/// Reads an optional display name: trimmed, 1–50 characters.
fn display_name_field(body: &mut Fields) -> Option<String> {
    let name = body.optional_string("display_name")?.trim().to_owned();
    if name.is_empty() || char_len(&name) > MAX_DISPLAY_NAME_CHARS {
        body.reject(
            "display_name",
            format!("must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"),
        );
        return None;
    }
    Some(name)
}

/// Accounts: `POST /api/auth/register`.
async fn register(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(tools): State<Tools>,
    State(events): State<Arc<dyn Events>>,
    State(limits): State<Arc<Limits>>,
    ClientAddr(client): ClientAddr,
    JsonFields(mut body): JsonFields,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.address_throttles.check(AuthRoute::Register, client)?;
    let username = body.required_string("username").map(|u| u.to_lowercase());
    let email = body.required_string("email").map(|e| e.trim().to_owned());
    let password = body.required_string("password");
    let display_name = display_name_field(&mut body);
    if let Some(username) = &username
        && !is_valid_username(username)
    {
        body.reject("username", "must be 3 to 30 of a-z, 0-9 and _");
    }
    if let Some(email) = &email
        && !is_valid_email(email)
    {
        body.reject("email", "must be an email address");
    }
    if let Some(password) = &password {
        check_password_length(&mut body, "password", password);
    }
    body.finish()?;
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let display_name = display_name.unwrap_or_else(|| username.clone());
    check_profanity(
        &tools.profanity,
        [
            ("username", username.as_str()),
            ("display_name", display_name.as_str()),
        ],
    )?;
    // Refuse a taken name before paying for a hash; the insert checks again.
    match store.user_by_login(&username).await {
        Ok(existing) if existing.username == username => {
            return Err(ApiError::Conflict("username is already taken".into()));
        }
        Ok(_) | Err(StoreError::NotFound) => {}
        Err(other) => return Err(other.into()),
    }
    let password_hash = auth.passwords.hash(password).await?;
    let user = store
        .create_user(&NewUser {
            username,
            email,
            password_hash,
            display_name,
            role: Role::User,
        })
        .await?;
    let token = issue_token(&store, &auth, &events, &limits, &user).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "user": user_json(&user, true) })),
    ))
}

/// A new token for `user`. Past `TOKENS_PER_USER` the oldest are revoked:
/// forgotten by the token cache and their sockets closed, as on logout.
async fn issue_token(
    store: &Store,
    auth: &Auth,
    events: &Arc<dyn Events>,
    limits: &Limits,
    user: &User,
) -> ApiResult<String> {
    let token = new_token()?;
    let revoked = store
        .create_token(user.id, &hash_token(&token), limits.tokens_per_user)
        .await?;
    if revoked > 0 {
        auth.tokens.forget_user(user.id);
        events.send(Event::TokensRevoked { user_id: user.id }).await;
    }
    Ok(token)
}

/// The login lock's key for an account, whichever name reached it (the
/// password change counts against the same lock).
fn account_key(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The user a login (username or email, lower-cased) names, if any, with
/// the attempt counted against the login lock: one lock per account,
/// whichever name reached it; unknown names are throttled the same way, so
/// a lock tells nothing about existence. Sign-ins and password resets
/// share it. Returns the lock's key, for `succeeded`.
pub(super) async fn begin_attempt(
    store: &Store,
    auth: &Auth,
    login: &str,
) -> ApiResult<(Option<User>, String)> {
    let user = match store.user_by_login(login).await {
        Ok(user) => Some(user),
        Err(StoreError::NotFound) => None,
        Err(other) => return Err(other.into()),
    };
    let throttle_key = user
        .as_ref()
        .map_or_else(|| format!("login:{login}"), |u| account_key(u.id));
    auth.login_throttle.begin(&throttle_key)?;
    Ok((user, throttle_key))
}

/// Accounts: `POST /api/auth/login`.
async fn login(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(events): State<Arc<dyn Events>>,
    State(limits): State<Arc<Limits>>,
    ClientAddr(client): ClientAddr,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    auth.address_throttles.check(AuthRoute::Login, client)?;
    let login = body.required_string("username");
    let password = body.required_string("password");
    body.finish()?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    // No account has a longer name or address: refused before anything is
    // looked up or remembered, so a long name costs nothing to keep.
    // Only failures count against the address (v1.6).
    let failed = || {
        auth.address_throttles.login_failed(client);
        ApiError::Unauthorized
    };
    let login = login.trim();
    if login.len() > MAX_LOGIN_BYTES {
        return Err(failed());
    }
    let login = login.to_lowercase();
    let (user, throttle_key) = begin_attempt(&store, &auth, &login).await?;
    // Every attempt checks one password at the same cost: an unknown or
    // deactivated account, or a password too long to be anyone's, is
    // checked against no one's hash, so the time tells nothing of who
    // exists.
    // A Django hash (a user who moved in) is replaced by ours on the first
    // sign-in that proves the password.
    let mut rehash_with = None;
    let verified = match &user {
        Some(user) if user.active && char_len(&password) <= MAX_PASSWORD_CHARS => {
            if !django::is_native(&user.password_hash) {
                rehash_with = Some(password.clone());
            }
            auth.passwords
                .verify(password, user.password_hash.clone())
                .await?
        }
        _ => {
            let password = password.chars().take(MAX_PASSWORD_CHARS).collect();
            auth.passwords.verify_nobody(password).await?
        }
    };
    match user {
        Some(user) if verified => {
            auth.login_throttle.succeeded(&throttle_key);
            if let Some(password) = rehash_with {
                let native = auth.passwords.hash(password).await?;
                store
                    .rehash_password(user.id, &user.password_hash, &native)
                    .await?;
                auth.tokens.forget_user(user.id);
            }
            let token = issue_token(&store, &auth, &events, &limits, &user).await?;
            Ok(Json(
                json!({ "token": token, "user": user_json(&user, true) }),
            ))
        }
        _ => Err(failed()),
    }
}

/// Accounts: `POST /api/auth/logout`: the token stops working at once.
async fn logout(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
    parts: Parts,
) -> ApiResult<StatusCode> {
    if let Some(token) = bearer_token(&parts.headers)? {
        store.delete_token(&hash_token(token)).await?;
        auth.tokens.forget_user(user.id);
        let event = Event::TokensRevoked { user_id: user.id };
        events.send(event).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Contract v1.3: `POST /api/auth/logout-all`: every token of the user,
/// this one included, stops working at once.
async fn logout_all(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
) -> ApiResult<StatusCode> {
    store.delete_user_tokens(user.id).await?;
    auth.tokens.forget_user(user.id);
    let event = Event::TokensRevoked { user_id: user.id };
    events.send(event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Contract v1.3: `POST /api/me/password`: a new password; every other
/// token of the user stops working at once, this one stays. Wrong current
/// passwords count against the account's login lock, so a stolen token
/// cannot be used to guess the password faster than a login could.
async fn change_password(
    State(store): State<Store>,
    State(auth): State<Auth>,
    State(events): State<Arc<dyn Events>>,
    AuthUser(user): AuthUser,
    parts: Parts,
    JsonFields(mut body): JsonFields,
) -> ApiResult<StatusCode> {
    let current = body.required_string("current_password");
    let new = body.required_string("new_password");
    if let Some(new) = &new {
        check_password_length(&mut body, "new_password", new);
    }
    body.finish()?;
    let (Some(current), Some(new), Some(token)) = (current, new, bearer_token(&parts.headers)?)
    else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let throttle_key = account_key(user.id);
    auth.login_throttle.begin(&throttle_key)?;
    let current_is_right = char_len(&current) <= MAX_PASSWORD_CHARS
        && auth
            .passwords
            .verify(current, user.password_hash.clone())
            .await?;
    if !current_is_right {
        return Err(ApiError::field(
            "current_password",
            "is not your current password",
        ));
    }
    auth.login_throttle.succeeded(&throttle_key);
    let password_hash = auth.passwords.hash(new).await?;
    store
        .change_password(user.id, &password_hash, &hash_token(token))
        .await?;
    auth.tokens.forget_user(user.id);
    let event = Event::TokensRevoked { user_id: user.id };
    events.send(event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Accounts: `GET /api/me`.
async fn me(AuthUser(user): AuthUser) -> Json<Value> {
    Json(me_json(&user))
}

/// Accounts: `PATCH /api/me`.
async fn update_me(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(auth): State<Auth>,
    State(tools): State<Tools>,
    AuthUser(user): AuthUser,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let display_name = display_name_field(&mut body);
    let bio = body.optional_string("bio");
    if let Some(bio) = &bio
        && char_len(bio) > MAX_BIO_CHARS
    {
        body.reject("bio", format!("must be at most {MAX_BIO_CHARS} characters"));
    }
    body.finish()?;
    check_profanity(
        &tools.profanity,
        [
            ("display_name", display_name.as_deref()),
            ("bio", bio.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, text)| Some((name, text?))),
    )?;
    let updated = store
        .update_profile(user.id, display_name.as_deref(), bio.as_deref())
        .await?;
    auth.tokens.forget_user(user.id);
    if updated.display_name != user.display_name {
        // Cached stories and library pages show the author's display name.
        caches.reads.invalidate_all();
    }
    Ok(Json(me_json(&updated)))
}

/// Accounts: `GET /api/users/{username}`: never shows an email.
async fn profile(
    State(store): State<Store>,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let user = store.user_by_username(&username.to_lowercase()).await?;
    if !user.active {
        return Err(ApiError::NotFound);
    }
    let stories = store.count_published_stories(user.id).await?;
    let mut value = user_json(&user, false);
    value["stories"] = json!(stories);
    Ok(Json(value))
}
