//! Registration, login and the caller's own account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::db::users::{self, CreateUserError, User};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::limits::client_ip::{ClientIp, throttle_key};
use crate::validate;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/me", get(me))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

/// The public view of an account (never the hash).
#[derive(Serialize)]
struct Account {
    id: Uuid,
    email: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<User> for Account {
    fn from(u: User) -> Self {
        Account {
            id: u.id,
            email: u.email,
            created_at: u.created_at,
        }
    }
}

async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let email = validate::email(&body.email)?;
    validate::password(&body.password)?;
    // After validation: only attempts that would hash count against the address.
    state
        .throttles
        .register_per_ip
        .check(&throttle_key(client))?;
    let hash = state.hasher.hash(body.password).await?;
    match users::create(&state.pool, &email, &hash).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "account registered");
            Ok((StatusCode::CREATED, Json(user.into())))
        }
        Err(CreateUserError::EmailTaken) => Err(ApiError::EmailTaken),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}

const BAD_CREDENTIALS: &str = "wrong email or password";

async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
    let email = body.email.trim().to_lowercase();
    // Every attempt counts, successful or not, and unknown emails like known ones (so the
    // answer does not reveal which emails have accounts).
    state.throttles.login_per_ip.check(&throttle_key(client))?;
    state.throttles.login_per_account.check(&email)?;
    // No account can have such an email (and PostgreSQL cannot compare a NUL).
    let user = if email.contains('\0') || email.chars().count() > validate::MAX_EMAIL_CHARS {
        None
    } else {
        users::find_by_email(&state.pool, &email).await?
    };
    // Verify against a dummy hash for unknown emails too, so timing does not reveal accounts.
    let (hash, user_id) = match &user {
        Some(u) => (u.password_hash.clone(), Some(u.id)),
        None => (state.dummy_hash.to_string(), None),
    };
    let ok = state.hasher.verify(body.password, hash).await?;
    let Some(user_id) = user_id.filter(|_| ok) else {
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    let token = state.tokens.issue(user_id)?;
    Ok(Json(json!({
        "token": token,
        "token_type": "Bearer",
        "expires_in": state.tokens.ttl().as_secs(),
    })))
}

async fn me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Account>, ApiError> {
    users::find_by_id(&state.pool, user)
        .await?
        .map(|u| Json(u.into()))
        // A valid token for a deleted account is as good as none.
        .ok_or(ApiError::Unauthorized("invalid or expired token"))
}
