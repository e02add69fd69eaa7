//! `/v1/users/invitations`: invite a user (`users:manage`), who sets their own password
//! through a one-time link; list, resend and revoke open invitations; and
//! `POST /v1/invitations/accept`, where the link's token and a password make the user active.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::api_keys::manage::Deleted;
use super::body::JsonBody;
use super::users::{UserView, permissions};
use crate::auth::caller::{Operator, UsersManage};
use crate::domain::{Email, Password};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::routes::no_store;
use crate::service::invitations::{self, IssuedInvitation};
use crate::service::users::NewUserRequest;
use crate::service::{Service, policy};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteUserRequest {
    #[schema(example = "grace@example.com")]
    email: String,
    /// Scopes and management permissions to hold (none by default).
    #[serde(default)]
    permissions: Vec<String>,
    /// An administrator holds every permission of the organization.
    #[serde(default)]
    #[schema(default = false)]
    admin: bool,
}

/// An invitation's link: shown in this answer only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationLink {
    /// Where the invitee sets their password (valid 7 days, once).
    #[schema(example = "https://auth.example.com/console/invitations/kgi_…")]
    invitation_url: String,
    expires_at: DateTime<Utc>,
}

impl InvitationLink {
    fn of(issued: &IssuedInvitation, service: &Service) -> InvitationLink {
        InvitationLink {
            invitation_url: issued.url(service),
            expires_at: issued.expires_at,
        }
    }
}

/// An invited user, and the link.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Invited {
    user: UserView,
    #[serde(flatten)]
    link: InvitationLink,
}

#[utoipa::path(
    post,
    path = "/v1/users/invitations",
    tag = "users",
    summary = "Invite a user: an `invited` user, and a one-time link to set their password",
    description = "Needs `users:manage`, and grants as creating a user does.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    request_body = InviteUserRequest,
    responses(
        ManagementErrors,
        (status = 201, description = "The user and the link; Cache-Control: no-store", body = Invited),
        (status = 409, description = "The email is taken", body = ErrorBody),
    )
)]
pub async fn invite_user(
    operator: Operator<UsersManage>,
    body: JsonBody<InviteUserRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let new = NewUserRequest {
        organization_id: policy::home_organization(&operator)?,
        permissions: permissions(&request.permissions)?,
        email: Email::parse(&request.email)?,
        is_admin: request.admin,
        password: None,
    };
    let (record, issued) = invitations::invite(&state.service, &operator, new).await?;
    Ok(no_store(HttpResponse::Created()).json(Invited {
        user: UserView::of(&record, &state.service),
        link: InvitationLink::of(&issued, &state.service),
    }))
}

/// An invitation not yet accepted (never its link).
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    user: UserView,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[utoipa::path(
    get,
    path = "/v1/users/invitations",
    tag = "users",
    summary = "List the open invitations (not accepted, revoked or expired)",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [])),
    responses(ManagementErrors, (status = 200, description = "Invitations", body = Page<InvitationView>))
)]
pub async fn list_invitations(
    operator: Operator<UsersManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization_id = policy::home_organization(&operator)?;
    let service = &state.service;
    let open = invitations::list(service, &operator, organization_id).await?;
    let data = open
        .into_iter()
        .map(|invitation| InvitationView {
            user: UserView::of(&invitation.record, service),
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Page::all(data)))
}

#[utoipa::path(
    post,
    path = "/v1/users/invitations/{user_id}/resend",
    tag = "users",
    summary = "A new link for an invited user; the old one stops working",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("user_id" = String, Path, description = "The invited user's id")),
    responses(
        ManagementErrors,
        (status = 200, description = "The new link; Cache-Control: no-store", body = InvitationLink),
        (status = 409, description = "The user is not invited", body = ErrorBody),
    )
)]
pub async fn resend_invitation(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let issued = invitations::resend(&state.service, &operator, &path).await?;
    Ok(no_store(HttpResponse::Ok()).json(InvitationLink::of(&issued, &state.service)))
}

#[utoipa::path(
    delete,
    path = "/v1/users/invitations/{user_id}",
    tag = "users",
    summary = "Revoke an invitation; the invited user is disabled",
    description = "Needs `users:manage`.",
    security(("bearerAuth" = ["users:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("user_id" = String, Path, description = "The invited user's id")),
    responses(
        ManagementErrors,
        (status = 200, description = "`{\"deleted\": true}`", body = Deleted),
        (status = 409, description = "The user is not invited", body = ErrorBody),
    )
)]
pub async fn revoke_invitation(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    invitations::revoke(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted: true }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The token at the end of the invitation link.
    #[schema(example = "kgi_…")]
    token: String,
    /// 12 characters to 72 bytes.
    #[schema(min_length = 12)]
    password: String,
}

#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    tag = "users",
    summary = "Accept an invitation: set the password; the user becomes active (once)",
    description = "No credentials: the token is one. An unknown, used, revoked or expired \
        token is a 404.",
    request_body = AcceptInvitationRequest,
    responses(
        (status = 200, description = "The user, now enabled", body = UserView),
        (status = 400, description = "A malformed request or password", body = ErrorBody),
        (status = 404, description = "No open invitation has this token", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn accept_invitation(
    req: actix_web::HttpRequest,
    body: JsonBody<AcceptInvitationRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let password = Password::parse(&request.password)?;
    let origin = state.origin(&req);
    let service = &state.service;
    let record = invitations::accept(service, &request.token, password, &origin).await?;
    Ok(no_store(HttpResponse::Ok()).json(UserView::of(&record, service)))
}
