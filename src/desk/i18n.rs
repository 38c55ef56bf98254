//! The desk's words, in Simplified Chinese first and English.

use crate::types::category::Category;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn from_cookie(v: Option<&str>) -> Lang {
        match v {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    /// Pick the text in this language.
    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

pub fn severity(lang: Lang, s: &str) -> &'static str {
    match (lang, s) {
        (Lang::Zh, "high") => "高",
        (Lang::Zh, "medium") => "中",
        (Lang::Zh, _) => "低",
        (Lang::En, "high") => "high",
        (Lang::En, "medium") => "medium",
        (Lang::En, _) => "low",
    }
}

pub fn status(lang: Lang, s: &str) -> &'static str {
    match (lang, s) {
        (Lang::Zh, "open") => "待处理",
        (Lang::Zh, "assigned") => "已认领",
        (Lang::Zh, "inspected") => "已检查",
        (Lang::Zh, "dismissed") => "已驳回",
        (Lang::Zh, _) => "未知",
        (Lang::En, "open") => "open",
        (Lang::En, "assigned") => "assigned",
        (Lang::En, "inspected") => "inspected",
        (Lang::En, "dismissed") => "dismissed",
        (Lang::En, _) => "unknown",
    }
}

pub fn domain(lang: Lang, d: &str) -> &'static str {
    match (lang, d) {
        (Lang::Zh, "food") => "餐饮",
        (Lang::Zh, _) => "文旅",
        (Lang::En, "food") => "food",
        (Lang::En, _) => "tourism",
    }
}

pub fn category(lang: Lang, c: Category) -> &'static str {
    match lang {
        Lang::En => c.phrase(),
        Lang::Zh => match c {
            Category::Illness => "食用后身体不适",
            Category::ForeignObject => "食品中有异物（头发、虫子、金属）",
            Category::Spoilage => "食品变质或过期",
            Category::Undercooked => "食品未熟",
            Category::Hygiene => "环境卫生差",
            Category::Safety => "安全隐患或受伤",
            Category::PriceFraud => "价格欺诈或乱收费",
            Category::FalseAdvertising => "虚假宣传",
            Category::ForcedConsumption => "强制购物或消费",
            Category::ConsumerRights => "拒绝退款等侵害消费者权益",
        },
    }
}

pub fn category_name(lang: Lang, name: &str) -> String {
    match Category::parse(name) {
        Some(c) => category(lang, c).to_owned(),
        None => name.to_owned(),
    }
}

/// What a trigger means.
pub fn trigger(lang: Lang, t: &str) -> String {
    match (lang, t) {
        (Lang::Zh, "model") => "模型评分".into(),
        (Lang::Zh, "illness_cluster") => "聚集性不适（72 小时内多人报告）".into(),
        (Lang::En, "model") => "model score".into(),
        (Lang::En, "illness_cluster") => "illness cluster (several people within 72 hours)".into(),
        (_, other) => other.to_owned(),
    }
}

/// A reason in plain words: `en` is the flag's own sentence.
pub fn reason(lang: Lang, feature: &str, value: f64, en: &str) -> String {
    if lang == Lang::En {
        return en.to_owned();
    }
    let (base, days) = match feature.rsplit_once('_') {
        Some((b, h @ ("7d" | "30d"))) => (b, if h == "7d" { 7 } else { 30 }),
        _ => (feature, 30),
    };
    let n = format!("{value:.1}");
    match base {
        "reviews" => format!("近 {days} 天评价 {n} 条（按时间加权）"),
        "low_rating" => format!("近 {days} 天 2 星及以下评价 {n} 条"),
        "risk_reviews" => format!("近 {days} 天有 {n} 条评价反映风险"),
        "risk_share" => format!("近 30 天 {:.0}% 的评价反映风险", value * 100.0),
        "photo_risk" => format!("近 30 天有 {n} 条风险评价附有照片"),
        "distinct_risk_reviewers" => format!("近 30 天有 {value:.0} 位不同用户反映风险"),
        "credible_risk" => {
            format!("近 {days} 天可信风险报告 {n} 条（考虑照片、集中刷评和检查结果）")
        }
        "credible_share" => format!(
            "近 {days} 天 {:.0}% 的评价反映风险（按可信度和评价量校正）",
            value * 100.0
        ),
        "credible_reporters" => format!("近 {days} 天有 {n} 位可信用户反映风险"),
        "unhappy_share" => format!(
            "近 {days} 天未反映风险的评价中 {:.0}% 为 3 星及以下",
            value * 100.0
        ),
        "days_since_inspection" => {
            if value >= 365.0 {
                "近一年未检查".into()
            } else {
                format!("距上次检查 {value:.0} 天")
            }
        }
        "last_inspection_violation" => if value > 0.5 {
            "上次检查发现违规"
        } else {
            "上次检查未发现违规（或未检查过）"
        }
        .into(),
        "violations_365d" => format!("近一年 {value:.0} 次检查发现违规"),
        "risk_evidence" => format!("风险报告增速与差评比例高于同类商户常态（证据值 {value:.1}）"),
        "inspected_since_flag" => if value > 0.5 {
            "上次预警后已检查且未发现问题"
        } else {
            "上次预警后尚未检查（或从未预警）"
        }
        .into(),
        other => match Category::parse(other) {
            Some(c) => format!("近 {days} 天有 {n} 条评价反映{}", category(lang, c)),
            None => en.to_owned(),
        },
    }
}

/// A flag's first reason (feature, value, the flag's own sentence) in
/// plain words; empty when the flag gave none.
pub fn first_reason(lang: Lang, (feature, value, en): &(String, f64, String)) -> String {
    if feature.is_empty() {
        return String::new();
    }
    reason(lang, feature, *value, en)
}

/// How long ago, in words.
pub fn age(lang: Lang, ms: i64) -> String {
    let mins = (ms / 60_000).max(0);
    let (n, zh, en) = if mins < 60 {
        (mins, "分钟", "min")
    } else if mins < 48 * 60 {
        (mins / 60, "小时", "h")
    } else {
        (mins / (24 * 60), "天", "d")
    };
    match lang {
        Lang::Zh => format!("{n} {zh}"),
        Lang::En => format!("{n} {en}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_chinese_words() {
        for c in Category::ALL {
            assert!(category(Lang::Zh, c).chars().any(|ch| ch > '\u{4e00}'));
        }
        assert_eq!(
            reason(Lang::Zh, "illness_7d", 3.0, "x"),
            "近 7 天有 3.0 条评价反映食用后身体不适"
        );
        assert_eq!(reason(Lang::En, "illness_7d", 3.0, "x"), "x");
        assert_eq!(age(Lang::Zh, 3 * 3600 * 1000), "3 小时");
    }
}
