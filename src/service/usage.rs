//! Usage history as reports: one key's counters, or every counter of the keys a caller may
//! list, in buckets of an hour or a day. A key's history is read with the same permissions
//! as the key.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::policy::{self, Listed};
use super::{Caller, Error, Service, api_keys};
use crate::db::usage::{self, KeyScope, UsageRow};
use crate::domain::{ManagementPermission, Outcome, UsageMetric, UsageWindow};

/// The counters of one bucket, or of a whole window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    pub tokens_issued: i64,
    /// Refused token requests, by reason.
    pub refused: BTreeMap<Outcome, i64>,
    pub direct_calls: i64,
    pub introspections: i64,
}

impl UsageCounts {
    fn add(&mut self, metric: UsageMetric, count: i64) {
        match metric {
            UsageMetric::TokensIssued => self.tokens_issued += count,
            UsageMetric::DirectCalls => self.direct_calls += count,
            UsageMetric::Introspections => self.introspections += count,
            UsageMetric::Refused(reason) => *self.refused.entry(reason).or_insert(0) += count,
        }
    }

    pub fn refused_total(&self) -> i64 {
        self.refused.values().sum()
    }
}

pub struct UsageBucket {
    pub start: DateTime<Utc>,
    pub counts: UsageCounts,
}

/// A window's buckets, every one of them (those without use hold zeros), and their totals.
pub struct UsageReport {
    pub window: UsageWindow,
    pub buckets: Vec<UsageBucket>,
    pub totals: UsageCounts,
}

impl UsageReport {
    fn of<'a>(window: UsageWindow, rows: impl IntoIterator<Item = &'a UsageRow>) -> UsageReport {
        let mut by_start: HashMap<DateTime<Utc>, UsageCounts> = HashMap::new();
        let mut totals = UsageCounts::default();
        for row in rows {
            // A name this version does not know (written by a newer one) is left out.
            let Some(metric) = UsageMetric::from_name(&row.metric) else {
                continue;
            };
            let start = window.granularity.floor(row.hour.and_utc());
            by_start.entry(start).or_default().add(metric, row.count);
            totals.add(metric, row.count);
        }
        let buckets = window
            .buckets()
            .map(|start| UsageBucket {
                start,
                counts: by_start.remove(&start).unwrap_or_default(),
            })
            .collect();
        UsageReport {
            window,
            buckets,
            totals,
        }
    }
}

/// One key's history.
pub async fn of_key(
    service: &Service,
    caller: &Caller,
    client_id: &str,
    window: UsageWindow,
) -> Result<UsageReport, Error> {
    let key = api_keys::get(service, caller, client_id).await?.key;
    let (from, to) = (window.from.naive_utc(), window.to.naive_utc());
    let rows = service
        .db(move |conn| Ok(usage::of_key(conn, &key.client_id, from, to)?))
        .await?;
    Ok(UsageReport::of(window, &rows))
}

/// A key's totals in an organization's summary.
pub struct KeyTotals {
    pub client_id: String,
    pub name: String,
    pub totals: UsageCounts,
}

pub struct OrganizationUsage {
    pub report: UsageReport,
    /// The keys with any use in the window, most tokens first.
    pub keys: Vec<KeyTotals>,
}

/// The history of every key of the organization the caller may list (its own keys without
/// `api_keys:manage`; only `test` keys for a `test` key), summed, and each key's totals.
pub async fn of_organization(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    window: UsageWindow,
) -> Result<OrganizationUsage, Error> {
    policy::require(caller, ManagementPermission::ApiKeysRead)?;
    if !policy::reaches(caller, organization_id) {
        return Err(Error::NotFound);
    }
    let created_by = match policy::listed_keys(caller) {
        Listed::Every => None,
        Listed::OwnedBy(owner) => Some(owner),
        Listed::Nothing => {
            return Ok(OrganizationUsage {
                report: UsageReport::of(window, &[]),
                keys: Vec::new(),
            });
        }
    };
    let scope = KeyScope {
        organization_id,
        created_by,
        environment: caller.fence(),
    };
    let (from, to) = (window.from.naive_utc(), window.to.naive_utc());
    let rows = service
        .db(move |conn| Ok(usage::of_keys(conn, &scope, from, to)?))
        .await?;
    let mut keys: BTreeMap<&str, KeyTotals> = BTreeMap::new();
    for (row, name) in &rows {
        if let Some(metric) = UsageMetric::from_name(&row.metric) {
            keys.entry(&row.client_id)
                .or_insert_with(|| KeyTotals {
                    client_id: row.client_id.clone(),
                    name: name.clone(),
                    totals: UsageCounts::default(),
                })
                .totals
                .add(metric, row.count);
        }
    }
    let mut keys: Vec<KeyTotals> = keys.into_values().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.totals.tokens_issued));
    Ok(OrganizationUsage {
        report: UsageReport::of(window, rows.iter().map(|(row, _)| row)),
        keys,
    })
}
