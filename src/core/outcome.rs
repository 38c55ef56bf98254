//! Inspection outcomes (what inspectors found), as they come back on
//! `inspection.outcomes`, and the book of them the core consults.
//!
//! An outcome takes effect in a business's state at event time: before the
//! first review of the business created at or after the inspection
//! ([`OutcomeBook::apply_due`]), as `train` folds the inspections CSV in.
//! An inspection that found nothing damps the credibility of the reports it
//! examined and ends the flag cooldown; one that found violations is
//! history the model reads ([`crate::core::features`]). The same outcome
//! given twice counts once.

use crate::core::features::BusinessState;
use crate::core::review::{RejectReason, Rejection};
use crate::types::Domain;
use crate::types::category::Category;
use compact_str::CompactString;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest outcome message read, in bytes.
pub const MAX_OUTCOME_BYTES: usize = 64 * 1024;
/// Most outcomes kept per business (the newest).
pub const MAX_PER_BUSINESS: usize = 16;

/// One inspection outcome (the contract's fields the core uses).
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionOutcome {
    pub outcome_id: String,
    pub business_id: String,
    pub domain: Domain,
    /// Unix seconds.
    pub inspected_at: i64,
    pub violation: bool,
    pub categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Wire {
    schema_version: Option<serde_json::Value>,
    outcome_id: Option<serde_json::Value>,
    business_id: Option<serde_json::Value>,
    domain: Option<serde_json::Value>,
    inspected_at: Option<serde_json::Value>,
    outcome: Option<serde_json::Value>,
    #[serde(default)]
    categories: Option<serde_json::Value>,
}

fn refuse(detail: impl Into<String>) -> Rejection {
    Rejection::new(RejectReason::InvalidOutcome, detail)
}

fn id(v: Option<&serde_json::Value>, field: &str) -> Result<String, Rejection> {
    match v.and_then(|v| v.as_str()) {
        Some(s) if (1..=128).contains(&s.chars().count()) => Ok(s.to_owned()),
        Some(_) => Err(refuse(format!("field {field} must be 1 to 128 characters"))),
        None => Err(refuse(format!("field {field} is missing or not a string"))),
    }
}

/// Read one `inspection.outcomes` message. A refusal names the field.
pub fn decode(bytes: &[u8]) -> Result<InspectionOutcome, Rejection> {
    if bytes.len() > MAX_OUTCOME_BYTES {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "an outcome of {} bytes is over the {MAX_OUTCOME_BYTES}-byte limit",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Rejection::new(RejectReason::InvalidUtf8, "the outcome is not UTF-8"))?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            RejectReason::InvalidJson,
            format!("the outcome is not JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(Rejection::new(
            RejectReason::NotAnObject,
            "the outcome is not a JSON object",
        ));
    }
    let w: Wire = serde_json::from_value(value).map_err(|e| refuse(e.to_string()))?;
    if w.schema_version.as_ref().and_then(|v| v.as_u64()) != Some(1) {
        return Err(refuse("field schema_version must be 1"));
    }
    let outcome_id = id(w.outcome_id.as_ref(), "outcome_id")?;
    let business_id = id(w.business_id.as_ref(), "business_id")?;
    let domain = w
        .domain
        .as_ref()
        .and_then(|v| v.as_str())
        .and_then(Domain::parse)
        .ok_or_else(|| refuse("field domain must be \"food\" or \"tourism\""))?;
    let inspected_at = w
        .inspected_at
        .as_ref()
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .ok_or_else(|| refuse("field inspected_at must be RFC 3339 with an offset"))?;
    let violation = match w.outcome.as_ref().and_then(|v| v.as_u64()) {
        Some(1) => true,
        Some(0) => false,
        _ => {
            return Err(refuse(
                "field outcome must be 1 (violations found) or 0 (none)",
            ));
        }
    };
    let mut categories = Vec::new();
    match &w.categories {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Array(items)) => {
            for item in items {
                let c = item
                    .as_str()
                    .and_then(Category::parse)
                    .filter(|c| Category::of(domain).contains(c))
                    .ok_or_else(|| {
                        refuse(format!(
                            "field categories holds {item}, not a {domain} risk category"
                        ))
                    })?;
                if !categories.contains(&c) {
                    categories.push(c);
                }
            }
        }
        Some(_) => return Err(refuse("field categories must be an array of strings")),
    }
    Ok(InspectionOutcome {
        outcome_id,
        business_id,
        domain,
        inspected_at,
        violation,
        categories,
    })
}

/// Outcomes by business, shared by every fold of a process (read on each
/// review of a business that has any, written as outcomes arrive).
#[derive(Debug, Default)]
pub struct OutcomeBook {
    /// Whether any outcome was ever added: while none was, a review costs
    /// no lookup.
    any: AtomicBool,
    by_business: RwLock<HashMap<(Domain, CompactString), Vec<Mark>>>,
}

/// An inspection as the book keeps it: when, and whether it found violations.
type Mark = (i64, bool);

impl OutcomeBook {
    /// Add an outcome (once; a business keeps its newest
    /// [`MAX_PER_BUSINESS`]). Returns whether it was new.
    pub fn add(
        &self,
        domain: Domain,
        business_id: &str,
        inspected_at: i64,
        violation: bool,
    ) -> bool {
        let mut map = match self.by_business.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let list = map
            .entry((domain, CompactString::from(business_id)))
            .or_default();
        let mark = (inspected_at, violation);
        if list.contains(&mark) {
            return false;
        }
        list.push(mark);
        list.sort_unstable();
        if list.len() > MAX_PER_BUSINESS {
            list.remove(0);
        }
        self.any.store(true, Ordering::Release);
        true
    }

    /// Businesses with outcomes.
    pub fn len(&self) -> usize {
        match self.by_business.read() {
            Ok(m) => m.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fold into `state` every outcome of its business inspected at or
    /// before `t` (those it holds already change nothing).
    pub fn apply_due(&self, domain: Domain, business_id: &str, state: &mut BusinessState, t: i64) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let map = match self.by_business.read() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(list) = map.get(&(domain, CompactString::from(business_id))) else {
            return;
        };
        for &(at, violation) in list.iter().take_while(|(at, _)| *at <= t) {
            if !state.holds_inspection(at, violation) {
                state.inspected(at, violation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(v: serde_json::Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "schema_version": 1, "outcome_id": "o-1", "flag_id": null,
            "business_id": "shop-1", "domain": "food", "region": "310105",
            "inspected_at": "2026-03-02T10:00:00+08:00", "outcome": 0,
            "categories": ["hygiene"], "inspector": "insp-7",
            "recorded_at": "2026-03-02T12:00:00+08:00"
        })
    }

    #[test]
    fn an_outcome_reads_and_bad_ones_name_their_field() {
        let o = decode(&msg(good())).unwrap();
        assert_eq!((o.domain, o.violation), (Domain::Food, false));
        assert_eq!(o.categories, vec![Category::Hygiene]);
        for (field, value, named) in [
            ("outcome", serde_json::json!(2), "outcome"),
            (
                "inspected_at",
                serde_json::json!("yesterday"),
                "inspected_at",
            ),
            ("domain", serde_json::json!("cars"), "domain"),
            ("business_id", serde_json::json!(""), "business_id"),
            (
                "categories",
                serde_json::json!(["price_fraud"]),
                "categories",
            ),
            ("schema_version", serde_json::json!(2), "schema_version"),
        ] {
            let mut v = good();
            v[field] = value;
            let e = decode(&msg(v)).unwrap_err();
            assert_eq!(e.reason, RejectReason::InvalidOutcome);
            assert!(e.detail.contains(named), "{field}: {e}");
        }
        assert_eq!(
            decode(b"[1]").unwrap_err().reason,
            RejectReason::NotAnObject
        );
        assert_eq!(decode(b"{").unwrap_err().reason, RejectReason::InvalidJson);
        assert_eq!(
            decode(&[0xff, 0xfe]).unwrap_err().reason,
            RejectReason::InvalidUtf8
        );
        let huge = vec![b' '; MAX_OUTCOME_BYTES + 1];
        assert_eq!(decode(&huge).unwrap_err().reason, RejectReason::TooLarge);
    }

    /// Outcomes apply when the business's reviews reach their time, once.
    #[test]
    fn outcomes_apply_at_event_time_once() {
        let book = OutcomeBook::default();
        let mut s = BusinessState::new(Domain::Food, 0);
        book.apply_due(Domain::Food, "shop-1", &mut s, 100);
        assert!(s.inspections().is_empty());
        assert!(book.add(Domain::Food, "shop-1", 50, false));
        assert!(
            !book.add(Domain::Food, "shop-1", 50, false),
            "the same outcome twice"
        );
        book.add(Domain::Food, "shop-1", 500, true);
        book.apply_due(Domain::Food, "shop-1", &mut s, 100);
        assert_eq!(s.inspections().len(), 1);
        book.apply_due(Domain::Food, "shop-1", &mut s, 100);
        assert_eq!(s.inspections().len(), 1, "applied once");
        book.apply_due(Domain::Food, "shop-1", &mut s, 600);
        assert_eq!(s.inspections().len(), 2);
        assert!(s.inspections()[0].violation);
        // Another business, another domain: untouched.
        let mut other = BusinessState::new(Domain::Tourism, 0);
        book.apply_due(Domain::Tourism, "shop-1", &mut other, 600);
        assert!(other.inspections().is_empty());
    }
}
