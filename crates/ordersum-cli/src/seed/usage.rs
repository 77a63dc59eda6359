//! What a demo order bills and how it was paid: a model's tokens or a
//! sandbox's resources at list price, and the split of the total between
//! cash, bonus and coupon.

use rand::Rng;

use super::catalog::{
    Model, PRICING_UNIT_PER_1K_TOKENS, PRICING_UNIT_PER_1M_TOKENS, SANDBOX_SKUS, TOKEN_SKUS,
};
use super::money::Fixed8;
use super::orders::{OrderStatus, pick_weighted};

/// What a line of an order bills: product, model, SKU, unit, quantity and
/// list price per unit.
pub(super) struct Usage {
    pub product_code: &'static str,
    pub model: Option<&'static Model>,
    pub sku: &'static str,
    pub pricing_unit: i32,
    pub quantity: Fixed8,
    pub list_price: Fixed8,
}

/// Tokens of one SKU of a model in an hour, log-uniform from 1K to 100M.
pub(super) fn model_usage(rng: &mut impl Rng, model: &'static Model) -> Usage {
    let (sku, _) = *pick_weighted(rng, TOKEN_SKUS, |&(_, w)| w);
    let per_1m = match sku {
        "output_tokens" => model.output_per_1m,
        "cached_input_tokens" => model.input_per_1m.mul_ratio(1, 4),
        _ => model.input_per_1m,
    };
    let magnitude = 10i128.pow(rng.random_range(3..=7));
    let tokens = rng.random_range(magnitude..magnitude * 10);
    let (pricing_unit, tokens_per_unit, list_price) = if rng.random_range(0..100) < 85 {
        (PRICING_UNIT_PER_1M_TOKENS, 1_000_000, per_1m)
    } else {
        (PRICING_UNIT_PER_1K_TOKENS, 1_000, per_1m.mul_ratio(1, 1000))
    };
    Usage {
        product_code: "modelverse",
        model: Some(model),
        sku,
        pricing_unit,
        quantity: Fixed8::from_raw(tokens * Fixed8::SCALE / tokens_per_unit),
        list_price,
    }
}

/// Some cores, GB or GPUs of one sandbox SKU for part of an hour.
pub(super) fn sandbox_usage(rng: &mut impl Rng) -> Usage {
    let sku = pick_weighted(rng, SANDBOX_SKUS, |sku| sku.weight);
    let size = rng.random_range(1..=sku.max_size);
    let seconds = rng.random_range(60..=3600);
    Usage {
        product_code: "sandbox",
        model: None,
        sku: sku.sku,
        pricing_unit: sku.pricing_unit,
        quantity: Fixed8::from_raw(size * Fixed8::SCALE).mul_ratio(seconds, 3600),
        list_price: sku.list_price,
    }
}

/// Cash, bonus and coupon: a paid order's sum to `total` exactly; others paid nothing.
pub(super) fn payments(
    rng: &mut impl Rng,
    status: OrderStatus,
    total: Fixed8,
) -> (Fixed8, Fixed8, Fixed8) {
    if status != OrderStatus::Paid {
        return (Fixed8::ZERO, Fixed8::ZERO, Fixed8::ZERO);
    }
    let coupon = if rng.random_range(0..100) < 15 {
        total.mul_ratio(rng.random_range(5..=30), 100)
    } else {
        Fixed8::ZERO
    };
    let bonus = if rng.random_range(0..100) < 25 {
        (total - coupon).mul_ratio(rng.random_range(10..=100), 100)
    } else {
        Fixed8::ZERO
    };
    (total - coupon - bonus, bonus, coupon)
}
