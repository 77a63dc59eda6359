//! What the seeded orders are made of: UModelVerse models and their prices,
//! sandbox SKUs, regions, names, and the enum labels the summaries show.

use super::money::Fixed8;

/// `(kind, value, name)` rows upserted into `enum_labels`.
pub const ENUM_LABELS: &[(&str, i32, &str)] = &[
    ("order_type", 1, "Purchase"),
    ("order_type", 2, "Renewal"),
    ("order_type", 3, "Upgrade"),
    ("order_type", 4, "Downgrade"),
    ("charge_type", 1, "Pay-as-you-go"),
    ("charge_type", 2, "Monthly"),
    ("charge_type", 3, "Yearly"),
    ("pricing_unit", 1, "per 1M tokens"),
    ("pricing_unit", 2, "per 1K tokens"),
    ("pricing_unit", 3, "per hour"),
    ("pricing_unit", 4, "per GB-hour"),
];

pub const PRICING_UNIT_PER_1M_TOKENS: i32 = 1;
pub const PRICING_UNIT_PER_1K_TOKENS: i32 = 2;
pub const PRICING_UNIT_PER_HOUR: i32 = 3;
pub const PRICING_UNIT_PER_GB_HOUR: i32 = 4;

/// A UModelVerse model with list prices in CNY per 1M tokens.
pub struct Model {
    pub id: &'static str,
    pub name: &'static str,
    pub input_per_1m: Fixed8,
    pub output_per_1m: Fixed8,
}

const fn model(id: &'static str, name: &'static str, input: i64, output: i64) -> Model {
    Model {
        id,
        name,
        input_per_1m: Fixed8::from_decimal(input, 1),
        output_per_1m: Fixed8::from_decimal(output, 1),
    }
}

/// Prices in tenths of a yuan per 1M tokens.
pub const MODELS: &[Model] = &[
    model("deepseek-r1", "DeepSeek-R1", 40, 160),
    model("deepseek-v3", "DeepSeek-V3", 20, 80),
    model("qwen3-235b", "Qwen3-235B-A22B", 20, 80),
    model("qwen3-32b", "Qwen3-32B", 20, 80),
    model("qwen3-coder-480b", "Qwen3-Coder-480B-A35B", 60, 240),
    model("qwen2.5-72b-instruct", "Qwen2.5-72B-Instruct", 40, 120),
    model("glm-4.5", "GLM-4.5", 40, 160),
    model("kimi-k2", "Kimi-K2-Instruct", 40, 160),
];

/// Token SKUs of a model order and how often each appears (weights).
pub const TOKEN_SKUS: &[(&str, u32)] = &[
    ("input_tokens", 45),
    ("output_tokens", 45),
    ("cached_input_tokens", 10),
];

/// A sandbox SKU: the pricing unit, the CNY list price per unit, the largest
/// size (cores, GB, GPUs) one sandbox uses of it, and how often it appears.
pub struct SandboxSku {
    pub sku: &'static str,
    pub pricing_unit: i32,
    pub list_price: Fixed8,
    pub max_size: i128,
    pub weight: u32,
}

pub const SANDBOX_SKUS: &[SandboxSku] = &[
    SandboxSku {
        sku: "cpu_core_hour",
        pricing_unit: PRICING_UNIT_PER_HOUR,
        list_price: Fixed8::from_decimal(12, 2),
        max_size: 32,
        weight: 40,
    },
    SandboxSku {
        sku: "memory_gb_hour",
        pricing_unit: PRICING_UNIT_PER_GB_HOUR,
        list_price: Fixed8::from_decimal(15, 3),
        max_size: 128,
        weight: 40,
    },
    SandboxSku {
        sku: "disk_gb_hour",
        pricing_unit: PRICING_UNIT_PER_GB_HOUR,
        list_price: Fixed8::from_decimal(5, 4),
        max_size: 500,
        weight: 15,
    },
    SandboxSku {
        sku: "gpu_hour",
        pricing_unit: PRICING_UNIT_PER_HOUR,
        list_price: Fixed8::from_decimal(980, 2),
        max_size: 8,
        weight: 5,
    },
];

pub const REGIONS: &[(&str, u32)] = &[("cn-bj2", 40), ("cn-sh2", 30), ("hk", 15), ("us-ca", 15)];

/// `order_type` codes: mostly purchases.
pub const ORDER_TYPES: &[(i32, u32)] = &[(1, 70), (2, 20), (3, 6), (4, 4)];

/// `charge_type` codes: mostly pay-as-you-go.
pub const CHARGE_TYPES: &[(i32, u32)] = &[(1, 80), (2, 15), (3, 5)];

/// Discount tiers in percent of the list price; each organization gets one.
pub const DISCOUNT_PERCENTS: &[i128] = &[100, 100, 95, 90, 85, 80];

pub const ORGANIZATION_NAMES: &[&str] = &[
    "Default Project",
    "Production",
    "Research Lab",
    "Data Platform",
    "Customer Support Bot",
    "Growth Experiments",
    "Mobile App",
    "Internal Tools",
    "Search & Recommendation",
    "QA Sandbox",
];

pub const USER_NAMES: &[&str] = &[
    "alice.wang",
    "bob.li",
    "carol.zhang",
    "david.chen",
    "erin.liu",
    "frank.zhao",
    "grace.sun",
    "henry.zhou",
    "ivy.wu",
    "jack.xu",
];
