//! `/v1/organizations`: tenants, for the deployment's administrators (`organizations:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::api_keys::manage::Deleted;
use super::body::JsonBody;
use crate::auth::caller::{Operator, OrganizationsManage};
use crate::db::organizations::Organization;
use crate::domain::{OrganizationStatus, ValidationError};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::service::organizations::{self, OrganizationUpdate};
use crate::state::AppState;

/// A tenant: its users, API keys and audit trail are its own.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationView {
    #[schema(example = "acme")]
    name: String,
    /// A name for people; the `name` never changes.
    #[schema(example = "Acme Corp.")]
    display_name: Option<String>,
    /// `disabled`: its keys get no token and its users cannot log in.
    status: OrganizationStatus,
    created_at: DateTime<Utc>,
}

impl From<&Organization> for OrganizationView {
    fn from(organization: &Organization) -> OrganizationView {
        OrganizationView {
            name: organization.name.clone(),
            display_name: organization.display_name.clone(),
            status: organization.status,
            created_at: organization.created_at.and_utc(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/organizations",
    tag = "organizations",
    summary = "List organizations (deployment administrators)",
    description = "Needs `organizations:manage`, which only users of the deployment's own \
        organization can hold.",
    security(("bearerAuth" = ["organizations:manage"]), ("sessionCookie" = [])),
    responses(
        ManagementErrors,
        (status = 200, description = "Organizations", body = Page<OrganizationView>),
    )
)]
pub async fn list_organizations(
    operator: Operator<OrganizationsManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = organizations::list(&state.service, &operator).await?;
    let data: Vec<OrganizationView> = all.iter().map(OrganizationView::from).collect();
    Ok(HttpResponse::Ok().json(Page::all(data)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    /// 3 to 40 characters of a-z, 0-9 and -, starting with a letter.
    #[schema(pattern = "^[a-z][a-z0-9-]{2,39}$", example = "acme")]
    name: String,
}

#[utoipa::path(
    post,
    path = "/v1/organizations",
    tag = "organizations",
    summary = "Create an organization",
    description = "Needs `organizations:manage`.",
    security(
        ("bearerAuth" = ["organizations:manage"]),
        ("sessionCookie" = [], "csrfHeader" = []),
    ),
    request_body = CreateOrganizationRequest,
    responses(
        ManagementErrors,
        (status = 201, description = "The organization", body = OrganizationView),
        (status = 409, description = "The name is taken", body = ErrorBody),
    )
)]
pub async fn create_organization(
    operator: Operator<OrganizationsManage>,
    body: JsonBody<CreateOrganizationRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let created = organizations::create(&state.service, &operator, &body.0.name).await?;
    Ok(HttpResponse::Created().json(OrganizationView::from(&created)))
}

#[utoipa::path(
    get,
    path = "/v1/organizations/{name}",
    tag = "organizations",
    summary = "Retrieve an organization",
    description = "Needs `organizations:manage`.",
    security(("bearerAuth" = ["organizations:manage"]), ("sessionCookie" = [])),
    params(("name" = String, Path, description = "The organization's name")),
    responses(
        ManagementErrors,
        (status = 200, description = "The organization", body = OrganizationView),
    )
)]
pub async fn retrieve_organization(
    operator: Operator<OrganizationsManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization = organizations::get(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(&organization)))
}

/// Give at least one of display_name, status.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    /// 1 to 100 characters; null clears it.
    #[schema(value_type = Option<String>, example = "Acme Corp.")]
    #[serde(default, deserialize_with = "crate::domain::present")]
    display_name: Option<serde_json::Value>,
    /// `disabled` refuses its keys' tokens at once and ends its users' sessions; `enabled`
    /// lets them back in (tokens issued before stay refused).
    #[schema(value_type = Option<OrganizationStatus>)]
    status: Option<String>,
}

impl UpdateOrganizationRequest {
    fn parse(self) -> Result<OrganizationUpdate, ValidationError> {
        let display_name = match self.display_name {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(serde_json::Value::String(text)) => {
                Some(Some(organizations::parse_display_name(&text)?))
            }
            Some(_) => {
                return Err(ValidationError::new(
                    "display_name",
                    "must be a string or null",
                ));
            }
        };
        let status = self.status.as_deref().map(str::parse).transpose()?;
        if display_name.is_none() && status.is_none() {
            return Err(ValidationError::new(
                "body",
                "nothing to change: give display_name or status",
            ));
        }
        Ok(OrganizationUpdate {
            display_name,
            status,
        })
    }
}

#[utoipa::path(
    patch,
    path = "/v1/organizations/{name}",
    tag = "organizations",
    summary = "Change an organization's display name or status",
    description = "Needs `organizations:manage`. The deployment's own organization cannot be \
        disabled.",
    security(
        ("bearerAuth" = ["organizations:manage"]),
        ("sessionCookie" = [], "csrfHeader" = []),
    ),
    params(("name" = String, Path, description = "The organization's name")),
    request_body = UpdateOrganizationRequest,
    responses(
        ManagementErrors,
        (status = 200, description = "The organization", body = OrganizationView),
    )
)]
pub async fn update_organization(
    operator: Operator<OrganizationsManage>,
    path: web::Path<String>,
    body: JsonBody<UpdateOrganizationRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let update = body.0.parse()?;
    let updated = organizations::update(&state.service, &operator, &path, update).await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(&updated)))
}

#[utoipa::path(
    delete,
    path = "/v1/organizations/{name}",
    tag = "organizations",
    summary = "Delete an organization: revoke its keys, end its sessions, hide it",
    description = "Needs `organizations:manage`. Its rows and audit trail stay, and its name \
        stays taken. The deployment's own organization cannot be deleted.",
    security(
        ("bearerAuth" = ["organizations:manage"]),
        ("sessionCookie" = [], "csrfHeader" = []),
    ),
    params(("name" = String, Path, description = "The organization's name")),
    responses(ManagementErrors, (status = 200, description = "`{\"deleted\": true}`", body = Deleted))
)]
pub async fn delete_organization(
    operator: Operator<OrganizationsManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    organizations::delete(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted: true }))
}
