use super::*;

fn ok() -> serde_json::Value {
    serde_json::json!({
        "review_id": "r1", "business_id": "shop-1", "domain": "food",
        "text": "汤里有头发", "created_at": "2026-11-27T12:30:00+08:00",
        "rating": 2, "photos": 1, "reviewer_id": "u1", "extra": {"ignored": true}
    })
}

fn reason_of(v: serde_json::Value) -> RejectReason {
    let bytes = serde_json::to_vec(&v).unwrap();
    decode(&bytes, &DecodeOptions::default())
        .unwrap_err()
        .reason
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = ok();
    v[field] = value;
    v
}

fn without(field: &str) -> serde_json::Value {
    let mut v = ok();
    v.as_object_mut().unwrap().remove(field);
    v
}

#[test]
fn accepts_a_valid_review_and_ignores_unknown_fields() {
    let r = decode(
        &serde_json::to_vec(&ok()).unwrap(),
        &DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(r.review_id, "r1");
    assert_eq!(r.domain, Domain::Food);
    assert_eq!(r.event_time, 1_795_753_800);
    assert_eq!(r.rating, Some(2.0));
    assert_eq!(r.photos, Some(1));
}

/// Messages of the common shape take the scanner, and come out as
/// serde_json reads them; other shapes are left to serde_json.
#[test]
fn the_common_shape_is_scanned_as_serde_json_reads_it() {
    // Messages as producers write them: every optional field present or
    // absent, Chinese and Latin text, offsets and ratings varied.
    let mut texts: Vec<String> = (0..300)
        .map(|i: u32| {
            let text =
                ["菜里有头发", "好吃，下次还来", "床单有污渍", "ok fine", ""][i as usize % 5];
            let mut m = serde_json::json!({
                "review_id": format!("r-{i}"),
                "business_id": format!("shop-{}", i % 17),
                "text": text,
                "created_at": format!("2026-11-{:02}T{:02}:30:00+08:00", 1 + i % 28, i % 24),
            });
            let o = m.as_object_mut().unwrap();
            if i % 2 == 0 {
                o.insert(
                    "domain".into(),
                    ["food", "tourism"][i as usize % 4 / 2].into(),
                );
            }
            if i % 3 == 0 {
                o.insert("rating".into(), (1 + i % 5).into());
            }
            if i % 5 == 0 {
                o.insert("business_name".into(), format!("店{i}").into());
                o.insert("region".into(), "310105".into());
            }
            if i % 7 == 0 {
                o.insert("platform".into(), "meituan".into());
                o.insert("reviewer_id".into(), format!("u{i}").into());
                o.insert("photos".into(), (i % 4).into());
            }
            serde_json::to_string(&m).unwrap()
        })
        .collect();
    assert_eq!(texts.len(), 300);
    texts.extend([
        // Spaced out, reordered, nulls, unknown scalars, a decimal rating.
        " { \"photos\" : 0 ,\"x\": -1e3, \"text\":\"床单有污渍\", \"rating\": 4.5,\n \"domain\": null,
          \"review_id\":\"r\",\"created_at\":\"2026-11-27T12:30:00Z\", \"business_id\":\"h\",
          \"platform\": null, \"y\": true } ".to_owned(),
    ]);
    let opts = DecodeOptions {
        default_domain: Some(Domain::Tourism),
        ..DecodeOptions::default()
    };
    for text in &texts {
        let scanned = scan_fast(text).unwrap_or_else(|| panic!("not scanned: {text}"));
        let parsed: Fast<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(
            from_fast(scanned, &opts),
            from_fast(parsed, &opts),
            "{text}"
        );
    }
    for text in [
        serde_json::to_string(&ok()).unwrap(),
        r#"{"review_id":"r","review_id":"s","business_id":"b","text":"t","created_at":"c"}"#.into(),
        r#"{"review_id":"r","business_id":"b","text":null,"created_at":"c"}"#.into(),
        r#"{"review_id":"r","business_id":"b","text":"t","created_at":"c","rating":-1}"#.into(),
        r#"{"review_id":"r","business_id":"b","text":"t","created_at":"c","photos":1.0}"#.into(),
        r#"{"review_id":"r","business_id":"b","text":"t\n","created_at":"c"}"#.into(),
        r#"{"business_id":"b","text":"t","created_at":"c"}"#.into(),
    ] {
        assert!(scan_fast(&text).is_none(), "{text}");
    }
}

#[test]
fn each_rule_has_its_own_reason() {
    use RejectReason as R;
    assert_eq!(reason_of(without("review_id")), R::MissingReviewId);
    assert_eq!(reason_of(with("review_id", "".into())), R::InvalidReviewId);
    assert_eq!(
        reason_of(with("review_id", "x".repeat(129).into())),
        R::InvalidReviewId
    );
    assert_eq!(reason_of(with("review_id", 7.into())), R::InvalidReviewId);
    assert_eq!(reason_of(without("business_id")), R::MissingBusinessId);
    assert_eq!(
        reason_of(with("business_id", "a\u{0}b".into())),
        R::InvalidBusinessId
    );
    assert_eq!(reason_of(without("text")), R::MissingText);
    assert_eq!(reason_of(with("text", 1.into())), R::InvalidText);
    assert_eq!(reason_of(without("created_at")), R::MissingCreatedAt);
    assert_eq!(
        reason_of(with("created_at", "2026-11-27 12:30:00".into())),
        R::InvalidCreatedAt
    );
    assert_eq!(
        reason_of(with("created_at", "2026-11-27T12:30:00".into())),
        R::InvalidCreatedAt
    );
    assert_eq!(
        reason_of(with("domain", "fashion".into())),
        R::InvalidDomain
    );
    assert_eq!(
        reason_of(with("created_at", "9999-12-31T23:59:59+08:00".into())),
        R::InvalidCreatedAt
    );
    assert_eq!(
        reason_of(with("created_at", "1970-01-01T00:00:00Z".into())),
        R::InvalidCreatedAt
    );
    assert_eq!(reason_of(without("domain")), R::MissingDomain);
    assert_eq!(reason_of(with("rating", 6.into())), R::InvalidRating);
    assert_eq!(reason_of(with("rating", 0.5.into())), R::InvalidRating);
    assert_eq!(reason_of(with("rating", "5".into())), R::InvalidRating);
    assert_eq!(reason_of(with("photos", (-1).into())), R::InvalidPhotos);
    assert_eq!(reason_of(with("photos", 1.5.into())), R::InvalidPhotos);
    assert_eq!(reason_of(with("region", 310105.into())), R::InvalidField);
    assert_eq!(reason_of(serde_json::json!([1, 2])), R::NotAnObject);
}

#[test]
fn byte_level_failures() {
    let o = DecodeOptions::default();
    assert_eq!(
        decode(b"{\"a\":", &o).unwrap_err().reason,
        RejectReason::InvalidJson
    );
    assert_eq!(
        decode(b"", &o).unwrap_err().reason,
        RejectReason::InvalidJson
    );
    assert_eq!(
        decode(b"\xff\xfe", &o).unwrap_err().reason,
        RejectReason::InvalidUtf8
    );
    let small = DecodeOptions { max_bytes: 10, ..o };
    assert_eq!(
        decode(&serde_json::to_vec(&ok()).unwrap(), &small)
            .unwrap_err()
            .reason,
        RejectReason::TooLarge
    );
}

#[test]
fn topic_domain_fills_in_a_missing_domain() {
    let o = DecodeOptions {
        default_domain: Some(Domain::Tourism),
        ..Default::default()
    };
    let r = decode(&serde_json::to_vec(&without("domain")).unwrap(), &o).unwrap();
    assert_eq!(r.domain, Domain::Tourism);
}

/// Every way a message is read (the flat scanner, white space between
/// tokens, escapes that serde unescapes, a nested member that serde
/// skips) gives the key of the labels it read, with or without them.
#[test]
fn a_decoded_review_carries_the_key_of_its_labels() {
    let opts = DecodeOptions::default();
    let flat = r#"{"review_id":"r1","business_id":"s1","domain":"food","text":"x","created_at":"2026-11-27T12:30:00+08:00","business_name":"老王面馆","region":"310105"}"#;
    let spaced = r#"{ "review_id": "r1", "business_id": "s1", "domain": "food", "text": "x", "created_at": "2026-11-27T12:30:00+08:00", "business_name": "老王面馆", "region": "310105" }"#;
    let escaped = r#"{"review_id":"r1","business_id":"s1","domain":"food","text":"x","created_at":"2026-11-27T12:30:00+08:00","business_name":"老王面馆","region":"310105"}"#;
    let nested = r#"{"review_id":"r1","business_id":"s1","domain":"food","text":"x","created_at":"2026-11-27T12:30:00+08:00","business_name":"老王面馆","region":"310105","extra":{"a":[1]}}"#;
    let bare = r#"{"review_id":"r1","business_id":"s1","domain":"food","text":"x","created_at":"2026-11-27T12:30:00+08:00"}"#;
    let named = LabelsKey::of(Some("老王面馆"), Some("310105"));
    for (text, key) in [
        (flat, named),
        (spaced, named),
        (escaped, named),
        (nested, named),
        (bare, LabelsKey::of(None, None)),
    ] {
        let r = decode_ref(text.as_bytes(), &opts).unwrap();
        assert_eq!(r.labels, key, "{text}");
        assert_eq!(
            r.labels,
            LabelsKey::of(r.business_name.as_deref(), r.region.as_deref())
        );
        let owned = r.into_owned();
        assert_eq!(owned.view().labels, key);
        assert_eq!(ReviewRef::from(owned).labels, key);
    }
    assert_ne!(named, LabelsKey::of(None, None));
}

#[test]
fn reason_names_are_unique() {
    let mut names: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), RejectReason::ALL.len());
}

#[test]
fn canonical_timestamps_are_read_directly() {
    for s in [
        "2026-11-27T12:30:00+08:00",
        "2000-01-01T00:00:00Z",
        "2024-02-29T23:59:59.123456789-05:30",
        "2099-12-31T23:59:59+00:00",
    ] {
        let chrono = DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        assert_eq!(canonical_seconds(s.as_bytes()), Some(chrono), "{s}");
    }
    for s in [
        "2023-02-29T00:00:00Z",
        "2026-11-27T12:30:60Z",
        "2026-11-27 12:30:00Z",
    ] {
        assert_eq!(canonical_seconds(s.as_bytes()), None, "{s}");
    }
}

use proptest::prelude::*;

/// A field's value: of its contract type or not, sometimes absent.
fn value() -> impl Strategy<Value = Option<serde_json::Value>> {
    use serde_json::Value as V;
    prop_oneof![
        Just(None),
        Just(Some(V::Null)),
        "\\PC{0,12}".prop_map(|s| Some(V::String(s))),
        "[a-z\\\\\"\u{4e00}-\u{4e05}\n]{0,140}".prop_map(|s| Some(V::String(s))),
        prop::sample::select(vec!["food", "tourism", "Food", ""])
            .prop_map(|s| Some(V::String(s.into()))),
        prop::sample::select(vec![
            "2026-11-27T12:30:00+08:00",
            "2026-11-27T12:30:00",
            "2026-13-01T00:00:00Z"
        ])
        .prop_map(|s| Some(V::String(s.into()))),
        (-2.0f64..8.0).prop_map(|x| Some(serde_json::json!(x))),
        (0i64..7).prop_map(|x| Some(serde_json::json!(x))),
        Just(Some(serde_json::json!([1, 2]))),
        Just(Some(serde_json::json!({"a": 1}))),
        Just(Some(V::Bool(true))),
    ]
}

/// Timestamps in and around the canonical shape: digits in every slot
/// (out-of-range ones too), other separators, fractions of any length,
/// offsets of every form.
fn timestamp() -> impl Strategy<Value = String> {
    // Month ends and February of leap and other years come often.
    let day = prop_oneof![0u32..32, 27u32..33, 0u32..100];
    let month = prop_oneof![0u32..14, Just(2)];
    let year = prop_oneof![
        1990u32..2110,
        0u32..10_000,
        prop::sample::select(vec![2000, 2023, 2024, 2100, 2096])
    ];
    let offset = prop_oneof![
        3 => Just("Z".to_owned()),
        3 => (prop::sample::select(vec!['+', '-']), 0u32..24, 0u32..60)
            .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
        1 => Just("z".to_owned()),
        1 => Just("".to_owned()),
        1 => Just("-00:00".to_owned()),
        1 => (prop::sample::select(vec!['+', '-']), 0u32..26, 0u32..62)
            .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
        1 => (0u32..26, 0u32..62).prop_map(|(h, m)| format!("+{h:02}{m:02}")),
    ];
    (
        year,
        month,
        day,
        prop_oneof![4 => Just('T'), 1 => prop::sample::select(vec!['t', ' ', '_'])],
        (0u32..26, 0u32..62, 0u32..62),
        prop_oneof![Just(String::new()), "\\.[0-9]{0,12}", "\\.[0-9a]{1,3}"],
        offset,
    )
        .prop_map(|(y, mo, d, t, (h, mi, s), frac, off)| {
            format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The direct read of a timestamp gives chrono's answer to the second,
    /// or leaves the text to chrono.
    #[test]
    fn timestamps_read_as_chrono_reads_them(s in timestamp()) {
        let chrono = parse_created_at(&s).map(|t| t.timestamp());
        if let Some(t) = canonical_seconds(s.as_bytes()) {
            prop_assert_eq!(Ok(t), DateTime::parse_from_rfc3339(&s).map(|c| c.timestamp()), "{}", s);
        }
        match (created_at_seconds(&s), chrono) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", s),
            (Err(a), Err(b)) => prop_assert_eq!(a, b, "{}", s),
            (a, b) => prop_assert!(false, "{} -> {:?} chrono {:?}", s, a, b),
        }
    }
}

proptest! {
    /// The word-at-a-time check agrees with the byte-at-a-time one.
    #[test]
    fn printable_ascii_is_per_byte(b in prop::collection::vec(
        prop_oneof![0x1eu8..0x22, 0x7du8..0x82, any::<u8>(), Just(b'a')], 0..40)) {
        prop_assert_eq!(printable_ascii(&b), b.iter().all(|c| (0x20..0x7f).contains(c)));
    }

    /// The fast path and the field-by-field path agree on every message:
    /// the same review, or the same reason.
    #[test]
    fn both_decoding_paths_agree(
        fields in prop::collection::vec(value(), 11),
        default_food in any::<bool>(),
    ) {
        let names = ["review_id", "business_id", "domain", "text", "created_at", "rating",
            "business_name", "region", "platform", "reviewer_id", "photos"];
        let mut obj = serde_json::Map::new();
        for (name, v) in names.iter().zip(fields) {
            if let Some(v) = v {
                obj.insert((*name).to_owned(), v);
            }
        }
        let text = serde_json::Value::Object(obj).to_string();
        let opts = DecodeOptions {
            default_domain: default_food.then_some(Domain::Food),
            ..DecodeOptions::default()
        };
        let fast = decode(text.as_bytes(), &opts);
        let slow = decode_fields(&text, &opts);
        match (fast, slow) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a.reason, b.reason, "{}", text),
            (a, b) => prop_assert!(false, "{} -> fast {:?} slow {:?}", text, a.map(|_| ()), b.map(|_| ())),
        }
    }
}
