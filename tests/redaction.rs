//! Personal data a reviewer writes into a review never leaves the process:
//! not in a flag's evidence, not in the state written to the changelog.

use proptest::prelude::*;
use reviewguard::core::decide::DecideConfig;
use reviewguard::core::extract::Extractor;
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::review::{self, DecodeOptions};
use reviewguard::core::scorer::{Models, Scorer, States};
use std::sync::Arc;

fn scorer() -> Scorer {
    Scorer {
        extractor: Arc::new(Extractor::builtin().unwrap()),
        models: Models::builtin().unwrap(),
        pseudonyms: Pseudonymiser::ephemeral(),
        decide: DecideConfig::default(),
        outcomes: Default::default(),
    }
}

/// The identifiers a reviewer might write, in the shapes they get written.
fn identifiers() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        (3u8..=9, 100_000_000u64..999_999_999),
        (0usize..3, 2_000_000u32..9_999_999),
        (
            110_000u32..659_999,
            1950u32..2010,
            1u32..=12,
            1u32..=28,
            100u32..999,
        ),
        "[a-z]{3,8}[0-9]{0,3}",
        "[a-z][a-z0-9_]{5,10}",
    )
        .prop_map(|((n, rest), (area, land), (reg, y, m, d, seq), user, wx)| {
            let mobile = format!("1{n}{rest}");
            let area = ["021", "0571", "010"][area];
            vec![
                (
                    mobile.clone(),
                    format!("{} {} {}", &mobile[..3], &mobile[3..7], &mobile[7..]),
                ),
                (land.to_string(), format!("{area}-{land}")),
                (
                    format!("{reg}{y}{m:02}{d:02}{seq}"),
                    format!("{reg}{y}{m:02}{d:02}{seq}X"),
                ),
                (format!("{user}@"), format!("{user}@mail.example.cn")),
                (wx.clone(), format!("微信：{wx}")),
            ]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn flags_and_changelog_state_carry_no_identifier(ids in identifiers()) {
        let scorer = scorer();
        let mut states = States::default();
        let mut out = Vec::new();
        // Illness reports from distinct reviewers within hours, rated two
        // stars (not bare one-star reports, which together weigh as one
        // reviewer): a flag follows.
        for (i, (_, shown)) in ids.iter().enumerate() {
            let line = serde_json::json!({
                "review_id": format!("r{i}"),
                "business_id": "shop-pii",
                "domain": "food",
                "text": format!("吃完就拉肚子了，还吐了，老板电话说不管，联系方式{shown}，大家小心"),
                "created_at": format!("2026-11-2{}T1{i}:00:00+08:00", 1 + i / 3),
                "rating": 2,
                "reviewer_id": format!("u{i}"),
            });
            let r = review::decode(line.to_string().as_bytes(), &DecodeOptions::default()).unwrap();
            if let Some(flag) = scorer.process(&mut states, &r).flag {
                out.push(serde_json::to_string(&flag).unwrap());
            }
        }
        prop_assert!(!out.is_empty(), "five illness reports in two days raise no flag");
        let state = states.get(reviewguard::types::Domain::Food, "shop-pii").unwrap();
        out.push(serde_json::to_string(state).unwrap());
        for json in &out {
            for (needle, shown) in &ids {
                prop_assert!(!json.contains(needle.as_str()), "{} (written as {}) leaked: {}", needle, shown, json);
            }
            prop_assert!(!json.contains("\"u0\""), "a reviewer id in clear: {}", json);
        }
    }
}
