//! Decoding and validating review messages against the review contract
//! (`docs/contract.md`, "Review message"). Every violation has its own machine-readable
//! [`RejectReason`], which is what the DLQ record and the rejects metric carry.

use crate::core::flatjson::{self, Scalar};
use crate::types::Domain;
use crate::types::LabelsKey;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Largest accepted message, unless configured otherwise (256 KiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
const MAX_ID_CHARS: usize = 128;
const MAX_ID_LEN_HINT: &str = "1-128 characters";

/// Why a message was refused. The `as_str` names are a contract: they are the
/// `reason` of DLQ records and the label of `reviewguard_reviews_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    TooLarge,
    InvalidUtf8,
    InvalidJson,
    NotAnObject,
    MissingReviewId,
    InvalidReviewId,
    MissingBusinessId,
    InvalidBusinessId,
    MissingText,
    InvalidText,
    MissingCreatedAt,
    InvalidCreatedAt,
    InvalidDomain,
    MissingDomain,
    InvalidRating,
    InvalidPhotos,
    InvalidField,
    /// An inspection outcome that breaks the outcome contract.
    InvalidOutcome,
    /// Reading it failed inside reviewguard (a bug that this message set
    /// off): dead-lettered, so that the stream goes on.
    Internal,
}

impl RejectReason {
    pub const ALL: [RejectReason; 19] = [
        RejectReason::TooLarge,
        RejectReason::InvalidUtf8,
        RejectReason::InvalidJson,
        RejectReason::NotAnObject,
        RejectReason::MissingReviewId,
        RejectReason::InvalidReviewId,
        RejectReason::MissingBusinessId,
        RejectReason::InvalidBusinessId,
        RejectReason::MissingText,
        RejectReason::InvalidText,
        RejectReason::MissingCreatedAt,
        RejectReason::InvalidCreatedAt,
        RejectReason::InvalidDomain,
        RejectReason::MissingDomain,
        RejectReason::InvalidRating,
        RejectReason::InvalidPhotos,
        RejectReason::InvalidField,
        RejectReason::InvalidOutcome,
        RejectReason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TooLarge => "too_large",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::MissingReviewId => "missing_review_id",
            RejectReason::InvalidReviewId => "invalid_review_id",
            RejectReason::MissingBusinessId => "missing_business_id",
            RejectReason::InvalidBusinessId => "invalid_business_id",
            RejectReason::MissingText => "missing_text",
            RejectReason::InvalidText => "invalid_text",
            RejectReason::MissingCreatedAt => "missing_created_at",
            RejectReason::InvalidCreatedAt => "invalid_created_at",
            RejectReason::InvalidDomain => "invalid_domain",
            RejectReason::MissingDomain => "missing_domain",
            RejectReason::InvalidRating => "invalid_rating",
            RejectReason::InvalidPhotos => "invalid_photos",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::InvalidOutcome => "invalid_outcome",
            RejectReason::Internal => "internal_error",
        }
    }
}

/// A refused message: the machine-readable reason and a sentence for humans.
/// The detail never quotes the message's text or reviewer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}", reason = .reason.as_str())]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// A review that passed every rule of the contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub review_id: String,
    pub business_id: String,
    pub domain: Domain,
    pub text: String,
    /// As sent, RFC 3339 with offset; kept verbatim for evidence.
    pub created_at: String,
    /// `created_at` as Unix seconds: the event time every decision uses.
    #[serde(skip)]
    pub event_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photos: Option<u32>,
}

/// A [`Review`] that borrows its strings: from the message where the JSON
/// has no escapes (what [`decode_ref`] gives), or from an owned review
/// ([`Review::view`]). The core works on it, so a review decoded in place is
/// never copied.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRef<'a> {
    pub review_id: Cow<'a, str>,
    pub business_id: Cow<'a, str>,
    pub domain: Domain,
    pub text: Cow<'a, str>,
    pub created_at: Cow<'a, str>,
    pub event_time: i64,
    pub rating: Option<f64>,
    pub business_name: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    pub platform: Option<Cow<'a, str>>,
    pub reviewer_id: Option<Cow<'a, str>>,
    pub photos: Option<u32>,
    /// The key of `business_name` and `region` ([`LabelsKey::of`]).
    pub labels: LabelsKey,
}

impl ReviewRef<'_> {
    pub fn into_owned(self) -> Review {
        Review {
            review_id: self.review_id.into_owned(),
            business_id: self.business_id.into_owned(),
            domain: self.domain,
            text: self.text.into_owned(),
            created_at: self.created_at.into_owned(),
            event_time: self.event_time,
            rating: self.rating,
            business_name: self.business_name.map(Cow::into_owned),
            region: self.region.map(Cow::into_owned),
            platform: self.platform.map(Cow::into_owned),
            reviewer_id: self.reviewer_id.map(Cow::into_owned),
            photos: self.photos,
        }
    }
}

impl From<Review> for ReviewRef<'_> {
    fn from(r: Review) -> Self {
        ReviewRef {
            review_id: r.review_id.into(),
            business_id: r.business_id.into(),
            domain: r.domain,
            text: r.text.into(),
            created_at: r.created_at.into(),
            event_time: r.event_time,
            rating: r.rating,
            labels: LabelsKey::of(r.business_name.as_deref(), r.region.as_deref()),
            business_name: r.business_name.map(Cow::Owned),
            region: r.region.map(Cow::Owned),
            platform: r.platform.map(Cow::Owned),
            reviewer_id: r.reviewer_id.map(Cow::Owned),
            photos: r.photos,
        }
    }
}

impl Review {
    /// The review as a [`ReviewRef`] borrowing every string (no copy): what
    /// the core works on, whether the review was decoded in place or owned.
    pub fn view(&self) -> ReviewRef<'_> {
        ReviewRef {
            review_id: Cow::Borrowed(&self.review_id),
            business_id: Cow::Borrowed(&self.business_id),
            domain: self.domain,
            text: Cow::Borrowed(&self.text),
            created_at: Cow::Borrowed(&self.created_at),
            event_time: self.event_time,
            rating: self.rating,
            business_name: self.business_name.as_deref().map(Cow::Borrowed),
            region: self.region.as_deref().map(Cow::Borrowed),
            labels: LabelsKey::of(self.business_name.as_deref(), self.region.as_deref()),
            platform: self.platform.as_deref().map(Cow::Borrowed),
            reviewer_id: self.reviewer_id.as_deref().map(Cow::Borrowed),
            photos: self.photos,
        }
    }
}

/// The wire shape, permissive so that each rule can give its own reason.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    review_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    business_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    domain: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    text: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    created_at: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    rating: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    business_name: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    region: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    platform: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    reviewer_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    photos: Option<&'a serde_json::value::RawValue>,
}

/// Options of [`decode`].
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    pub max_bytes: usize,
    /// Domain to assume when the message has none (the topic's domain);
    /// `None` makes `domain` required.
    pub default_domain: Option<Domain>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            default_domain: None,
        }
    }
}

/// Decode and validate one message's bytes.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<Review, Rejection> {
    decode_ref(bytes, opts).map(ReviewRef::into_owned)
}

/// [`decode`], borrowing the review's strings from `bytes` where it can.
pub fn decode_ref<'a>(bytes: &'a [u8], opts: &DecodeOptions) -> Result<ReviewRef<'a>, Rejection> {
    use RejectReason as R;
    if bytes.len() > opts.max_bytes {
        return Err(Rejection::new(
            R::TooLarge,
            format!(
                "message is {} bytes, the limit is {} (limits.max_message_bytes)",
                bytes.len(),
                opts.max_bytes
            ),
        ));
    }
    // simdutf8 checks Chinese text several times faster than std; std only
    // for the position of a broken byte.
    let text = match simdutf8::basic::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => std::str::from_utf8(bytes).map_err(|e| {
            Rejection::new(
                R::InvalidUtf8,
                format!("not UTF-8: invalid byte at {}", e.valid_up_to()),
            )
        })?,
    };
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        // Tell "valid JSON of another type" apart from "not JSON at all".
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Rejection::new(R::NotAnObject, "the message is JSON but not an object"),
            Err(e) => Rejection::new(R::InvalidJson, json_detail(&e)),
        });
    }
    // Fast path: the flat shape nearly every message has, scanned; else one
    // typed parse, borrowing where the JSON has no escapes. Whatever that
    // refuses goes through the field-by-field path below, which gives each
    // broken rule its own reason.
    if let Some(fast) = scan_fast(text) {
        return from_fast(fast, opts);
    }
    if let Ok(fast) = serde_json::from_str::<Fast<'_>>(text) {
        return from_fast(fast, opts);
    }
    decode_fields(text, opts).map(ReviewRef::from)
}

/// The wire shape when every field has its contract type.
#[derive(Deserialize)]
struct Fast<'a> {
    #[serde(borrow)]
    review_id: Cow<'a, str>,
    #[serde(borrow)]
    business_id: Cow<'a, str>,
    #[serde(borrow, default)]
    domain: Option<Borrowed<'a>>,
    #[serde(borrow)]
    text: Borrowed<'a>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(default)]
    rating: Option<f64>,
    #[serde(borrow, default)]
    business_name: Option<Borrowed<'a>>,
    #[serde(borrow, default)]
    region: Option<Borrowed<'a>>,
    #[serde(borrow, default)]
    platform: Option<Borrowed<'a>>,
    #[serde(borrow, default)]
    reviewer_id: Option<Borrowed<'a>>,
    #[serde(default)]
    photos: Option<u32>,
}

/// [`Fast`] from a message of the flat shape [`flatjson::members`] reads:
/// what serde_json would make of it, without a visitor call per token.
/// `None` for any other shape, and wherever serde_json would refuse the
/// typed parse (a missing or duplicated field, a value of another type), so
/// that the serde path decides.
fn scan_fast(text: &str) -> Option<Fast<'_>> {
    /// Set a field once; a second time (a duplicated key) refuses.
    fn once<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
        match (slot.is_none(), value) {
            (true, Some(v)) => {
                *slot = Some(v);
                true
            }
            _ => false,
        }
    }
    fn string(v: Scalar<'_>) -> Option<&str> {
        match v {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
    // Optional fields: `Some(None)` when the message has them as null.
    fn optional<'a, T>(
        v: Scalar<'a>,
        of: impl FnOnce(Scalar<'a>) -> Option<T>,
    ) -> Option<Option<T>> {
        match v {
            Scalar::Null => Some(None),
            v => of(v).map(Some),
        }
    }
    // Only the numbers whose value std and serde_json read alike for sure:
    // no sign, no exponent (JSON syntax was checked by the scanner).
    fn rating(v: Scalar<'_>) -> Option<f64> {
        match v {
            Scalar::Num(n) if n.bytes().all(|b| b.is_ascii_digit() || b == b'.') => n.parse().ok(),
            _ => None,
        }
    }
    fn photos(v: Scalar<'_>) -> Option<u32> {
        match v {
            Scalar::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }
    let (mut review_id, mut business_id, mut text_, mut created_at) = (None, None, None, None);
    let (mut domain, mut rating_, mut business_name, mut region) = (None, None, None, None);
    let (mut platform, mut reviewer_id, mut photos_) = (None, None, None);
    flatjson::members(text, |key, v| match key {
        "review_id" => once(&mut review_id, string(v)),
        "business_id" => once(&mut business_id, string(v)),
        "text" => once(&mut text_, string(v)),
        "created_at" => once(&mut created_at, string(v)),
        "domain" => once(&mut domain, optional(v, string)),
        "rating" => once(&mut rating_, optional(v, rating)),
        "business_name" => once(&mut business_name, optional(v, string)),
        "region" => once(&mut region, optional(v, string)),
        "platform" => once(&mut platform, optional(v, string)),
        "reviewer_id" => once(&mut reviewer_id, optional(v, string)),
        "photos" => once(&mut photos_, optional(v, photos)),
        // Other fields are ignored, as by serde.
        _ => true,
    })?;
    fn borrowed(s: Option<Option<&str>>) -> Option<Borrowed<'_>> {
        s.flatten().map(|s| Borrowed(Cow::Borrowed(s)))
    }
    Some(Fast {
        review_id: Cow::Borrowed(review_id?),
        business_id: Cow::Borrowed(business_id?),
        domain: borrowed(domain),
        text: Borrowed(Cow::Borrowed(text_?)),
        created_at: Cow::Borrowed(created_at?),
        rating: rating_.flatten(),
        business_name: borrowed(business_name),
        region: borrowed(region),
        platform: borrowed(platform),
        reviewer_id: borrowed(reviewer_id),
        photos: photos_.flatten(),
    })
}

/// A string that borrows from the message where it has no escapes. (serde
/// borrows a `Cow<str>` field only when it is not inside an `Option`.)
struct Borrowed<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Borrowed<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// The rules of [`decode_fields`], in the same order, on a typed parse.
fn from_fast<'a>(f: Fast<'a>, opts: &DecodeOptions) -> Result<ReviewRef<'a>, Rejection> {
    use RejectReason as R;
    check_id(&f.review_id, "review_id", R::InvalidReviewId)?;
    check_id(&f.business_id, "business_id", R::InvalidBusinessId)?;
    let domain = resolve_domain(f.domain.as_ref().map(|d| d.0.as_ref()), opts)?;
    let event_time = created_at_seconds(&f.created_at)?;
    check_rating(f.rating)?;
    let business_name = f.business_name.map(|b| b.0);
    let region = f.region.map(|b| b.0);
    Ok(ReviewRef {
        labels: LabelsKey::of(business_name.as_deref(), region.as_deref()),
        review_id: f.review_id,
        business_id: f.business_id,
        domain,
        text: f.text.0,
        created_at: f.created_at,
        event_time,
        rating: f.rating,
        business_name,
        region,
        platform: f.platform.map(|b| b.0),
        reviewer_id: f.reviewer_id.map(|b| b.0),
        photos: f.photos,
    })
}

fn resolve_domain(domain: Option<&str>, opts: &DecodeOptions) -> Result<Domain, Rejection> {
    use RejectReason as R;
    match domain {
        Some(d) => Domain::parse(d).ok_or_else(|| {
            Rejection::new(R::InvalidDomain, "domain must be \"food\" or \"tourism\"")
        }),
        None => opts.default_domain.ok_or_else(|| {
            Rejection::new(
                R::MissingDomain,
                "domain is required here (\"food\" or \"tourism\")",
            )
        }),
    }
}

fn check_rating(rating: Option<f64>) -> Result<(), Rejection> {
    match rating {
        Some(r) if !(1.0..=5.0).contains(&r) => Err(Rejection::new(
            RejectReason::InvalidRating,
            "rating must be from 1 to 5",
        )),
        _ => Ok(()),
    }
}

/// Field by field, so that each broken rule gets its own reason.
fn decode_fields(text: &str, opts: &DecodeOptions) -> Result<Review, Rejection> {
    use RejectReason as R;
    let wire: Wire<'_> =
        serde_json::from_str(text).map_err(|e| Rejection::new(R::InvalidJson, json_detail(&e)))?;

    let review_id = required_id(
        wire.review_id,
        "review_id",
        R::MissingReviewId,
        R::InvalidReviewId,
    )?;
    let business_id = required_id(
        wire.business_id,
        "business_id",
        R::MissingBusinessId,
        R::InvalidBusinessId,
    )?;
    let domain = resolve_domain(
        opt_string(wire.domain, "domain", R::InvalidDomain)?.as_deref(),
        opts,
    )?;
    let text = match wire.text {
        None => {
            return Err(Rejection::new(
                R::MissingText,
                "text is required (may be empty)",
            ));
        }
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|_| Rejection::new(R::InvalidText, "text must be a string"))?,
    };
    let created_at = match opt_string(wire.created_at, "created_at", R::InvalidCreatedAt)? {
        None => {
            return Err(Rejection::new(
                R::MissingCreatedAt,
                "created_at is required (RFC 3339 with offset)",
            ));
        }
        Some(s) => s,
    };
    let event_time = created_at_seconds(&created_at)?;
    let rating = match wire.rating {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) => {
            let r: f64 = serde_json::from_str(raw.get()).map_err(|_| {
                Rejection::new(R::InvalidRating, "rating must be a number from 1 to 5")
            })?;
            check_rating(Some(r))?;
            Some(r)
        }
    };
    let photos =
        match wire.photos {
            None => None,
            Some(raw) if raw.get() == "null" => None,
            Some(raw) => Some(serde_json::from_str::<u32>(raw.get()).map_err(|_| {
                Rejection::new(R::InvalidPhotos, "photos must be a whole number >= 0")
            })?),
        };
    Ok(Review {
        review_id,
        business_id,
        domain,
        text,
        created_at,
        event_time,
        rating,
        business_name: opt_string(wire.business_name, "business_name", R::InvalidField)?,
        region: opt_string(wire.region, "region", R::InvalidField)?,
        platform: opt_string(wire.platform, "platform", R::InvalidField)?,
        reviewer_id: opt_string(wire.reviewer_id, "reviewer_id", R::InvalidField)?,
        photos,
    })
}

/// Earliest and latest accepted `created_at` (Unix seconds): 2000-01-01 and
/// 2100-01-01 UTC. Decisions run on event time, so one review dated in year
/// 9999 would age every later review of its business to nothing; the bounds
/// are fixed (not the wall clock) so that a replay refuses exactly what the
/// stream refused.
pub const CREATED_AT_RANGE: std::ops::Range<i64> = 946_684_800..4_102_444_800;

/// A contract timestamp as Unix seconds: what [`parse_created_at`] gives,
/// read directly when the text has the shape nearly every message has
/// (`2026-11-27T12:30:00+08:00`, `Z`, or up to nine digits of fraction;
/// calendar-checked). Anything else goes through chrono, which also words
/// the refusal.
pub fn created_at_seconds(s: &str) -> Result<i64, Rejection> {
    match canonical_seconds(s.as_bytes()) {
        Some(t) if CREATED_AT_RANGE.contains(&t) => Ok(t),
        _ => parse_created_at(s).map(|t| t.timestamp()),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` as Unix seconds (the fraction
/// dropped, as `DateTime::timestamp` drops it); `None` for any other text,
/// or a date or time that does not exist (second 60 included: chrono decides).
fn canonical_seconds(b: &[u8]) -> Option<i64> {
    fn num(b: &[u8], at: usize, n: usize) -> Option<i64> {
        let mut v = 0;
        for &d in b.get(at..at + n)? {
            let d = d.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + i64::from(d);
        }
        Some(v)
    }
    let sep = |at: usize, c: u8| (b.get(at) == Some(&c)).then_some(());
    let year = num(b, 0, 4)?;
    sep(4, b'-')?;
    let month = num(b, 5, 2)?;
    sep(7, b'-')?;
    let day = num(b, 8, 2)?;
    sep(10, b'T')?;
    let hour = num(b, 11, 2)?;
    sep(13, b':')?;
    let minute = num(b, 14, 2)?;
    sep(16, b':')?;
    let second = num(b, 17, 2)?;
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        at += 1 + digits;
    }
    let offset = match b.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(b, at + 1, 2)?, num(b, at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let east = h * 3600 + m * 60;
            if *sign == b'+' { east } else { -east }
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (years 0000-9999),
    // counted in 400-year eras from March 1st.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Parse a contract timestamp: RFC 3339 with an explicit offset, within
/// [`CREATED_AT_RANGE`].
pub fn parse_created_at(s: &str) -> Result<DateTime<FixedOffset>, Rejection> {
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| {
        Rejection::new(
            RejectReason::InvalidCreatedAt,
            "created_at must be RFC 3339 with an offset, e.g. 2026-11-27T12:30:00+08:00",
        )
    })?;
    if !CREATED_AT_RANGE.contains(&t.timestamp()) {
        return Err(Rejection::new(
            RejectReason::InvalidCreatedAt,
            "created_at must be from the year 2000 up to 2099",
        ));
    }
    Ok(t)
}

fn json_detail(e: &serde_json::Error) -> String {
    // serde_json's messages name positions and types, never the payload.
    format!("not valid JSON: {e}")
}

fn opt_string(
    raw: Option<&serde_json::value::RawValue>,
    field: &str,
    reason: RejectReason,
) -> Result<Option<String>, Rejection> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| Rejection::new(reason, format!("{field} must be a string"))),
    }
}

fn required_id(
    raw: Option<&serde_json::value::RawValue>,
    field: &str,
    missing: RejectReason,
    invalid: RejectReason,
) -> Result<String, Rejection> {
    let s = opt_string(raw, field, invalid)?
        .ok_or_else(|| Rejection::new(missing, format!("{field} is required")))?;
    check_id(&s, field, invalid)?;
    Ok(s)
}

/// Whether every byte is printable ASCII (0x20 to 0x7e), eight at a time.
fn printable_ascii(b: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = ONES * 0x80;
    // The high bit of a byte below `n` (exact for "is there one", n <= 0x80).
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    let mut words = b.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Below 0x20, 0x80 and up, or 0x7f (the only byte that is 0x7f
        // xor'ed to zero).
        if below(w, 0x20) | (w & HIGH) | below(w ^ (ONES * 0x7f), 1) != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|b| (0x20..0x7f).contains(b))
}

fn check_id(s: &str, field: &str, invalid: RejectReason) -> Result<(), Rejection> {
    // Most ids: printable ASCII of a valid length, one pass.
    if (1..=MAX_ID_CHARS).contains(&s.len()) && printable_ascii(s.as_bytes()) {
        return Ok(());
    }
    let n = s.chars().count();
    if n == 0 || n > MAX_ID_CHARS {
        return Err(Rejection::new(
            invalid,
            format!("{field} must be {MAX_ID_LEN_HINT}, got {n}"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Rejection::new(
            invalid,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// What `reviewguard extract` reads of a line: the review's id, domain and
/// text (the rest of the review contract does not apply there).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalRequest {
    pub review_id: String,
    pub domain: Domain,
    pub text: String,
}

/// Read one `extract` input line; the error says what is wrong with it.
pub fn decode_signal_request(line: &[u8], max_bytes: usize) -> Result<SignalRequest, String> {
    if line.len() > max_bytes {
        return Err(format!(
            "line is {} bytes, the limit is {max_bytes}",
            line.len()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let review_id = obj
        .get("review_id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("review_id is missing or not a string")?;
    let domain = obj
        .get("domain")
        .and_then(|v| v.as_str())
        .and_then(Domain::parse)
        .ok_or("domain is missing or not \"food\"/\"tourism\"")?;
    let text = obj
        .get("text")
        .and_then(|v| v.as_str())
        .ok_or("text is missing or not a string")?;
    Ok(SignalRequest {
        review_id: review_id.to_owned(),
        domain,
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests;
