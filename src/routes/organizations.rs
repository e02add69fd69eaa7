//! `/v1/organizations`: tenants, for the deployment's administrators (`organizations:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::body::JsonBody;
use crate::auth::caller::{Operator, OrganizationsManage};
use crate::db::organizations::Organization;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::service::organizations;
use crate::state::AppState;

/// A tenant: its users, API keys and audit trail are its own.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationView {
    #[schema(example = "acme")]
    name: String,
    created_at: DateTime<Utc>,
}

impl From<&Organization> for OrganizationView {
    fn from(organization: &Organization) -> OrganizationView {
        OrganizationView {
            name: organization.name.clone(),
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
