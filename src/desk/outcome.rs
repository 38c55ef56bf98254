//! Turning what an inspector entered into an outcome record and its
//! `inspection.outcomes` message (contract in DESIGN.md, "Inspection
//! outcomes"). Pure: the caller gives the time and the ids.

use super::store::{FlagRow, OutcomeRow, User};
use crate::types::Domain;
use crate::types::category::Category;
use serde::Deserialize;

pub const MAX_NOTE_CHARS: usize = 2000;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_ID_CHARS: usize = 128;

/// An outcome on a flag, as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    pub inspected_at: String,
    pub outcome: i64,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// A routine (not flag-driven) inspection, as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutineInput {
    pub business_id: String,
    pub domain: String,
    pub region: String,
    pub inspected_at: String,
    pub outcome: i64,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DismissInput {
    pub reason: String,
}

/// A field that cannot be taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field {}: {}", self.field, self.message)
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// Text a person typed: no control characters but new lines and tabs,
/// at most `max` characters.
pub fn text(field: &'static str, s: &str, max: usize, required: bool) -> Result<String, Invalid> {
    let s = s.trim();
    if required && s.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(s.to_owned())
}

/// An identifier (business, region): 1 to 128 printable characters.
pub fn ident(field: &'static str, s: &str) -> Result<String, Invalid> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > MAX_ID_CHARS {
        return Err(invalid(
            field,
            format!("must be 1 to {MAX_ID_CHARS} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(s.to_owned())
}

/// `inspected_at`: RFC 3339 with an offset, not in the future (a minute's
/// clock skew allowed) and within the last two years.
pub fn inspected_at(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, Invalid> {
    let t = chrono::DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
        invalid(
            "inspected_at",
            "must be RFC 3339 with an offset, e.g. 2026-12-07T10:30:00+08:00",
        )
    })?;
    let utc = t.with_timezone(&chrono::Utc);
    if utc > now + chrono::Duration::minutes(1) {
        return Err(invalid("inspected_at", "is in the future"));
    }
    if utc < now - chrono::Duration::days(730) {
        return Err(invalid("inspected_at", "is more than two years ago"));
    }
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

fn categories(domain: Domain, given: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for c in given {
        let Some(cat) = Category::parse(c.trim()) else {
            return Err(invalid(
                "categories",
                format!(
                    "unknown category; use {}",
                    Category::of(domain)
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if !Category::of(domain).contains(&cat) {
            return Err(invalid(
                "categories",
                format!("{} is not a {} category", cat.as_str(), domain.as_str()),
            ));
        }
        if !out.iter().any(|x| x == cat.as_str()) {
            out.push(cat.as_str().to_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn violation(outcome: i64) -> Result<bool, Invalid> {
    match outcome {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid(
            "outcome",
            "must be 1 (violations found) or 0 (none found)",
        )),
    }
}

/// The ids and the clock of one recording.
pub struct Stamp {
    pub outcome_id: String,
    pub now: chrono::DateTime<chrono::Utc>,
    /// The regulator's offset from UTC, for `recorded_at`.
    pub utc_offset_hours: i32,
}

struct Fields<'a> {
    flag_id: Option<&'a str>,
    business_id: String,
    domain: Domain,
    region: String,
    inspected_at: &'a str,
    outcome: i64,
    categories: &'a [String],
    note: &'a str,
}

fn build(f: Fields<'_>, user: &User, stamp: &Stamp) -> Result<OutcomeRow, Invalid> {
    let inspected_at = inspected_at(f.inspected_at, stamp.now)?;
    let violation = violation(f.outcome)?;
    let categories = categories(f.domain, f.categories)?;
    let note = text("note", f.note, MAX_NOTE_CHARS, false)?;
    let offset = chrono::FixedOffset::east_opt(stamp.utc_offset_hours * 3600)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    let recorded_at = stamp
        .now
        .with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let message = serde_json::json!({
        "schema_version": 1,
        "outcome_id": stamp.outcome_id,
        "flag_id": f.flag_id,
        "business_id": f.business_id,
        "domain": f.domain.as_str(),
        "region": f.region,
        "inspected_at": inspected_at,
        "outcome": i64::from(violation),
        "categories": categories,
        "inspector": user.pseudonym,
        "recorded_at": recorded_at,
    })
    .to_string();
    Ok(OutcomeRow {
        outcome_id: stamp.outcome_id.clone(),
        flag_id: f.flag_id.map(str::to_owned),
        business_id: f.business_id,
        domain: f.domain.as_str().to_owned(),
        region: f.region,
        inspected_at,
        violation,
        categories,
        note,
        inspector: user.pseudonym.clone(),
        recorded_by: user.name.clone(),
        recorded_at,
        recorded_ms: stamp.now.timestamp_millis(),
        message,
        published_ms: None,
    })
}

/// The outcome of an inspection a flag led to.
pub fn on_flag(
    flag: &FlagRow,
    input: &OutcomeInput,
    user: &User,
    stamp: &Stamp,
) -> Result<OutcomeRow, Invalid> {
    let domain = Domain::parse(&flag.domain)
        .ok_or_else(|| invalid("domain", format!("{:?} is not a domain", flag.domain)))?;
    build(
        Fields {
            flag_id: Some(&flag.flag_id),
            business_id: flag.business_id.clone(),
            domain,
            region: flag.region.clone(),
            inspected_at: &input.inspected_at,
            outcome: input.outcome,
            categories: &input.categories,
            note: &input.note,
        },
        user,
        stamp,
    )
}

/// The outcome of a routine inspection (no flag).
pub fn routine(input: &RoutineInput, user: &User, stamp: &Stamp) -> Result<OutcomeRow, Invalid> {
    let domain = Domain::parse(input.domain.trim())
        .ok_or_else(|| invalid("domain", "must be food or tourism"))?;
    build(
        Fields {
            flag_id: None,
            business_id: ident("business_id", &input.business_id)?,
            domain,
            region: ident("region", &input.region)?,
            inspected_at: &input.inspected_at,
            outcome: input.outcome,
            categories: &input.categories,
            note: &input.note,
        },
        user,
        stamp,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::store::Role;

    fn user() -> User {
        User {
            name: "li".into(),
            role: Role::Inspector,
            regions: vec!["310105".into()],
            password_hash: String::new(),
            pseudonym: "insp-0a0b".into(),
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            outcome_id: "o-1".into(),
            now: chrono::DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            utc_offset_hours: 8,
        }
    }

    fn flag() -> FlagRow {
        FlagRow {
            flag_id: "f-1".into(),
            domain: "food".into(),
            business_id: "shop-1".into(),
            business_name: "店".into(),
            region: "310105".into(),
            severity: "high".into(),
            risk_score: 0.9,
            trigger: "model".into(),
            event_time: String::new(),
            received_ms: 0,
            reason: (String::new(), 0.0, String::new()),
            body: String::new(),
            status: "open".into(),
            assignee: None,
            updated_ms: 0,
        }
    }

    #[test]
    fn the_message_carries_the_contracts_fields_and_no_name_or_note() {
        let input = OutcomeInput {
            inspected_at: "2026-12-07T09:30:00+08:00".into(),
            outcome: 1,
            categories: vec!["hygiene".into(), "illness".into(), "hygiene".into()],
            note: "后厨有老鼠".into(),
        };
        let o = on_flag(&flag(), &input, &user(), &stamp()).unwrap();
        let m: serde_json::Value = serde_json::from_str(&o.message).unwrap();
        assert_eq!(m["schema_version"], 1);
        assert_eq!(m["outcome_id"], "o-1");
        assert_eq!(m["flag_id"], "f-1");
        assert_eq!(m["business_id"], "shop-1");
        assert_eq!(m["region"], "310105");
        assert_eq!(m["outcome"], 1);
        assert_eq!(m["categories"], serde_json::json!(["hygiene", "illness"]));
        assert_eq!(m["inspector"], "insp-0a0b");
        assert_eq!(m["inspected_at"], "2026-12-07T09:30:00+08:00");
        assert_eq!(m["recorded_at"], "2026-12-07T10:00:00+08:00");
        assert!(!o.message.contains("li\""));
        assert!(!o.message.contains("老鼠"));
        // The core reads it back.
        let back = crate::core::outcome::decode(o.message.as_bytes()).unwrap();
        assert!(back.violation);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut input = OutcomeInput {
            inspected_at: "yesterday".into(),
            outcome: 1,
            categories: vec![],
            note: String::new(),
        };
        let f = flag();
        let e = |i: &OutcomeInput| on_flag(&f, i, &user(), &stamp()).unwrap_err().field;
        assert_eq!(e(&input), "inspected_at");
        input.inspected_at = "2027-01-01T00:00:00+08:00".into();
        assert_eq!(e(&input), "inspected_at");
        input.inspected_at = "2026-12-07T09:30:00+08:00".into();
        input.outcome = 2;
        assert_eq!(e(&input), "outcome");
        input.outcome = 0;
        input.categories = vec!["price_fraud".into()];
        assert_eq!(e(&input), "categories");
        input.categories = vec![];
        input.note = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(e(&input), "note");
        input.note = "a\u{0}b".into();
        assert_eq!(e(&input), "note");
    }
}
