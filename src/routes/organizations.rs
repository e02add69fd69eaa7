//! `/v1/organizations`: tenants, for the deployment's administrators (`organizations:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::body::JsonBody;
use crate::auth::caller::{Operator, OrganizationsManage};
use crate::db::{self, organizations::NewOrganization, organizations::Organization};
use crate::error::ApiError;
use crate::lifecycle::organizations::parse_name;
use crate::state::AppState;

#[derive(Serialize)]
struct OrganizationView {
    name: String,
    created_at: DateTime<Utc>,
}

fn view(organization: &Organization) -> OrganizationView {
    OrganizationView {
        name: organization.name.clone(),
        created_at: organization.created_at.and_utc(),
    }
}

pub async fn list_organizations(
    _operator: Operator<OrganizationsManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = db::run(&state.pool, |conn| {
        let data: Vec<OrganizationView> = db::organizations::list(conn)?.iter().map(view).collect();
        Ok(Page::all(data))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
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
    let name = parse_name(&body.0.name)?;
    let (actor, creator_organization) = (operator.actor.clone(), operator.organization_id);
    let created = db::run(&state.pool, move |conn| {
        db::write_transaction(conn, |conn| -> Result<_, ApiError> {
            if db::organizations::find_by_name(conn, &name)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "organization {name} already exists"
                )));
            }
            let now = Utc::now();
            let organization = db::organizations::insert(
                conn,
                &NewOrganization {
                    name: &name,
                    created_at: now.naive_utc(),
                },
            )?;
            let event = crate::lifecycle::Event {
                organization_id: Some(creator_organization),
                action: "organization.created",
                target: Some(&organization.name),
                outcome: "success",
                details: serde_json::json!({}),
            };
            crate::lifecycle::audit(conn, &actor, event, now)?;
            Ok(organization)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view(&created)))
}

pub async fn retrieve_organization(
    _operator: Operator<OrganizationsManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = parse_name(&path).map_err(|_| ApiError::NotFound)?;
    let found = db::run(&state.pool, move |conn| {
        Ok(db::organizations::find_by_name(conn, &name)?)
    })
    .await?;
    let organization = found.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(view(&organization)))
}
