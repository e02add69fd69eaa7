//! `/v1/organizations`: tenants, for the deployment's administrators (`organizations:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::body::JsonBody;
use crate::auth::caller::{Operator, OrganizationsManage};
use crate::db::organizations::Organization;
use crate::error::ApiError;
use crate::service::organizations;
use crate::state::AppState;

#[derive(Serialize)]
struct OrganizationView {
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

pub async fn list_organizations(
    operator: Operator<OrganizationsManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = organizations::list(&state.service, &operator).await?;
    let data: Vec<OrganizationView> = all.iter().map(OrganizationView::from).collect();
    Ok(HttpResponse::Ok().json(Page::all(data)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    name: String,
}

pub async fn create_organization(
    operator: Operator<OrganizationsManage>,
    body: JsonBody<CreateOrganizationRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let created = organizations::create(&state.service, &operator, &body.0.name).await?;
    Ok(HttpResponse::Created().json(OrganizationView::from(&created)))
}

pub async fn retrieve_organization(
    operator: Operator<OrganizationsManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization = organizations::get(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(&organization)))
}
