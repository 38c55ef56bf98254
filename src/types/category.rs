//! The contract's risk categories (`docs/contract.md`, "Risk categories").

use crate::types::Domain;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Illness,
    ForeignObject,
    Spoilage,
    Undercooked,
    Hygiene,
    Safety,
    PriceFraud,
    FalseAdvertising,
    ForcedConsumption,
    ConsumerRights,
}

pub const FOOD: [Category; 5] = [
    Category::Illness,
    Category::ForeignObject,
    Category::Spoilage,
    Category::Undercooked,
    Category::Hygiene,
];

pub const TOURISM: [Category; 6] = [
    Category::Hygiene,
    Category::Safety,
    Category::PriceFraud,
    Category::FalseAdvertising,
    Category::ForcedConsumption,
    Category::ConsumerRights,
];

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Illness,
        Category::ForeignObject,
        Category::Spoilage,
        Category::Undercooked,
        Category::Hygiene,
        Category::Safety,
        Category::PriceFraud,
        Category::FalseAdvertising,
        Category::ForcedConsumption,
        Category::ConsumerRights,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Illness => "illness",
            Category::ForeignObject => "foreign_object",
            Category::Spoilage => "spoilage",
            Category::Undercooked => "undercooked",
            Category::Hygiene => "hygiene",
            Category::Safety => "safety",
            Category::PriceFraud => "price_fraud",
            Category::FalseAdvertising => "false_advertising",
            Category::ForcedConsumption => "forced_consumption",
            Category::ConsumerRights => "consumer_rights",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The categories a domain's reviews are checked for, in contract order.
    pub fn of(domain: Domain) -> &'static [Category] {
        match domain {
            Domain::Food => &FOOD,
            Domain::Tourism => &TOURISM,
        }
    }

    /// What a regulator reads for "N reviews report ...".
    pub fn phrase(self) -> &'static str {
        match self {
            Category::Illness => "illness after eating",
            Category::ForeignObject => "foreign objects (hair, insects, metal) in food",
            Category::Spoilage => "spoiled or expired food",
            Category::Undercooked => "undercooked food",
            Category::Hygiene => "dirty or unhygienic conditions",
            Category::Safety => "safety hazards or injuries",
            Category::PriceFraud => "overcharging or hidden fees",
            Category::FalseAdvertising => "false advertising",
            Category::ForcedConsumption => "forced shopping or consumption",
            Category::ConsumerRights => "refused refunds or other consumer-rights violations",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of categories, as a bit set: small enough to keep per review in state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CategorySet(u16);

impl CategorySet {
    pub fn insert(&mut self, c: Category) {
        self.0 |= c.bit();
    }
    pub fn contains(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    /// Members in contract order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }
    /// Names sorted alphabetically, as the `extract` contract wants them.
    pub fn sorted_names(self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.iter().map(Category::as_str).collect();
        v.sort_unstable();
        v
    }
    pub fn bits(self) -> u16 {
        self.0
    }
    pub fn from_bits(bits: u16) -> Self {
        CategorySet(bits & ((1 << Category::ALL.len()) - 1))
    }
}

impl FromIterator<Category> for CategorySet {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> Self {
        let mut s = CategorySet::default();
        for c in iter {
            s.insert(c);
        }
        s
    }
}
