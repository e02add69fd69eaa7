//! `/v1/users`: operators of the caller's organization (`users:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::body::JsonBody;
use crate::auth::caller::{Operator, UsersManage};
use crate::domain::{Email, Password, ScopeSet, UserStatus, ValidationError};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::routes::no_store;
use crate::service::users::{self, NewUserRequest, UserRecord, UserUpdate};
use crate::service::{Service, policy};
use crate::state::AppState;

/// An operator of an organization: logs in to the console, owns API keys.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    /// Null for a user made before users had public ids.
    #[schema(example = "usr_3kQ9xL2mP8aB7cD1")]
    pub id: Option<String>,
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub organization: String,
    pub admin: bool,
    /// What the user may do now (every permission, for an administrator).
    pub permissions: ScopeSet,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl UserView {
    pub fn of(record: &UserRecord, service: &Service) -> UserView {
        let user = &record.user;
        UserView {
            id: user.public_id.clone(),
            email: user.email.clone(),
            organization: record.organization.name.clone(),
            admin: user.is_admin,
            permissions: record.permissions(service),
            status: user.status,
            created_at: user.created_at.and_utc(),
            last_login_at: user.last_login_at.map(|t| t.and_utc()),
        }
    }
}

pub(super) fn permissions(list: &[String]) -> Result<ScopeSet, ValidationError> {
    ScopeSet::from_items(list.iter().map(String::as_str))
        .map_err(|e| ValidationError::new("permissions", e.message))
}

#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    summary = "List the organization's users",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [])),
    responses(ManagementErrors, (status = 200, description = "Users", body = Page<UserView>))
)]
pub async fn list_users(
    operator: Operator<UsersManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization_id = policy::home_organization(&operator)?;
    let records = users::list(&state.service, &operator, organization_id).await?;
    let data = records
        .iter()
        .map(|r| UserView::of(r, &state.service))
        .collect();
    Ok(HttpResponse::Ok().json(Page::all(data)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(example = "ada@example.com")]
    email: String,
    /// Scopes and management permissions to hold (none by default).
    #[serde(default)]
    permissions: Vec<String>,
    /// An administrator holds every permission of the organization.
    #[serde(default)]
    #[schema(default = false)]
    admin: bool,
    /// 12 characters to 72 bytes. Omit to have one generated.
    #[schema(min_length = 12)]
    password: Option<String>,
}

/// A new user; a generated password is in this answer only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    user: UserView,
    /// The generated password, shown this once (absent when the request gave one).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    password: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    summary = "Create a user; a generated password is in this answer only",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    request_body = CreateUserRequest,
    responses(
        ManagementErrors,
        (status = 201, description = "The user; Cache-Control: no-store", body = CreatedUser),
        (status = 409, description = "The email is taken", body = ErrorBody),
    )
)]
pub async fn create_user(
    operator: Operator<UsersManage>,
    body: JsonBody<CreateUserRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let new = NewUserRequest {
        organization_id: policy::home_organization(&operator)?,
        permissions: permissions(&request.permissions)?,
        email: Email::parse(&request.email)?,
        is_admin: request.admin,
        password: request
            .password
            .as_deref()
            .map(Password::parse)
            .transpose()?,
    };
    let (record, password) = users::create(&state.service, &operator, new).await?;
    Ok(no_store(HttpResponse::Created()).json(CreatedUser {
        user: UserView::of(&record, &state.service),
        password: password.map(|p| p.expose().to_owned()),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/users/{user_id}",
    tag = "users",
    summary = "Retrieve a user",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [])),
    params(("user_id" = String, Path, description = "The user's id (usr_…)")),
    responses(ManagementErrors, (status = 200, description = "The user", body = UserView))
)]
pub async fn retrieve_user(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = users::get(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(UserView::of(&record, &state.service)))
}

/// Give at least one of permissions, admin, status.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateUserRequest {
    /// Replaces the user's permissions.
    permissions: Option<Vec<String>>,
    admin: Option<bool>,
    /// A disabled user cannot log in, and their keys hold nothing.
    #[schema(value_type = Option<UserStatus>)]
    status: Option<String>,
}

impl UpdateUserRequest {
    fn parse(self) -> Result<UserUpdate, ValidationError> {
        let update = UserUpdate {
            permissions: self.permissions.as_deref().map(permissions).transpose()?,
            is_admin: self.admin,
            enabled: self
                .status
                .as_deref()
                .map(str::parse)
                .transpose()?
                .map(|s: UserStatus| match s {
                    UserStatus::Invited => Err(ValidationError::new(
                        "status",
                        "must be enabled or disabled (invite a user at /v1/users/invitations)",
                    )),
                    s => Ok(s == UserStatus::Enabled),
                })
                .transpose()?,
        };
        if update.permissions.is_none() && update.is_admin.is_none() && update.enabled.is_none() {
            return Err(ValidationError::new(
                "body",
                "nothing to change: give permissions, admin or status",
            ));
        }
        Ok(update)
    }
}

#[utoipa::path(
    patch,
    path = "/v1/users/{user_id}",
    tag = "users",
    summary = "Change a user's permissions, administrator flag or status",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("user_id" = String, Path, description = "The user's id (usr_…)")),
    request_body = UpdateUserRequest,
    responses(ManagementErrors, (status = 200, description = "The user", body = UserView))
)]
pub async fn update_user(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    body: JsonBody<UpdateUserRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let update = body.0.parse()?;
    let record = users::update(&state.service, &operator, &path, update).await?;
    Ok(HttpResponse::Ok().json(UserView::of(&record, &state.service)))
}
