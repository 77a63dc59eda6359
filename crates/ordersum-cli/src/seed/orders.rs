//! Generates realistic demo orders one at a time (written as rows of
//! Postgres' `COPY ... FROM STDIN` text format by `copy`). Pure and
//! synchronous: the caller decides where the rows go.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use super::catalog::{
    CHARGE_TYPES, DISCOUNT_PERCENTS, MODELS, ORDER_TYPES, ORGANIZATION_NAMES, REGIONS, USER_NAMES,
};
use super::money::Fixed8;
use super::usage::{Usage, model_usage, payments, sandbox_usage};

/// The `orders` columns the rows fill, in row order (`id` is generated).
pub const COPY_COLUMNS: &str = "order_no, company_id, organization_id, organization_name, \
    user_email, status, order_type, charge_type, product_code, model_id, model_name, \
    resource_id, region, pricing_sku, pricing_unit, quantity, list_price, discount_price, \
    original_price, total_price, cash_account, bonus_account, coupon, currency, start_time, \
    end_time, paid_time, created_at";

/// Per mille of orders that are paid, and revoked; the rest are unpaid.
const PAID_PER_MILLE: u32 = 700;
const REVOKED_PER_MILLE: u32 = 20;
/// Percent of orders for UModelVerse models; the rest are sandboxes.
const MODELVERSE_PERCENT: u32 = 75;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub company_id: i64,
    /// Orders start within the `days` days before `now`.
    pub days: u32,
    pub now: DateTime<Utc>,
    /// Order numbers are this prefix plus a counter; it must differ per run.
    pub order_no_prefix: String,
}

/// `orders.status`, defined once in the domain crate.
pub use ordersum_model::OrderStatus;

/// One row of `orders`.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_no: String,
    pub company_id: i64,
    pub organization_id: i64,
    pub organization_name: Arc<str>,
    pub user_email: Arc<str>,
    pub status: OrderStatus,
    pub order_type: i32,
    pub charge_type: i32,
    pub product_code: &'static str,
    pub model_id: &'static str,
    pub model_name: &'static str,
    pub resource_id: Arc<str>,
    pub region: &'static str,
    pub pricing_sku: &'static str,
    pub pricing_unit: i32,
    pub quantity: Fixed8,
    pub list_price: Fixed8,
    pub discount_price: Fixed8,
    pub original_price: Fixed8,
    pub total_price: Fixed8,
    pub cash_account: Fixed8,
    pub bonus_account: Fixed8,
    pub coupon: Fixed8,
    pub currency: &'static str,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub paid_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A resource (model endpoint or sandbox) that orders are billed for.
#[derive(Debug)]
struct Resource {
    id: Arc<str>,
    region: &'static str,
    /// Index into `MODELS` (model resources only).
    model: usize,
}

#[derive(Debug)]
struct Organization {
    id: i64,
    name: Arc<str>,
    discount_percent: i128,
    model_resources: Vec<Resource>,
    sandbox_resources: Vec<Resource>,
}

/// The company's organizations, users and resources. Derived from the company
/// id alone, so every seed run of a company bills the same ones.
#[derive(Debug)]
struct Company {
    organizations: Vec<Organization>,
    user_emails: Vec<Arc<str>>,
}

impl Company {
    fn new(company_id: i64) -> Company {
        let mut rng = StdRng::seed_from_u64(0x6f72_6465_7273_756d ^ company_id as u64);
        let mut names = ORGANIZATION_NAMES.to_vec();
        names.shuffle(&mut rng);
        let organizations = names
            .into_iter()
            .take(rng.random_range(4..=6))
            .enumerate()
            .map(|(index, name)| Organization {
                id: company_id
                    .saturating_mul(1000)
                    .saturating_add(index as i64 + 1),
                name: name.into(),
                discount_percent: *DISCOUNT_PERCENTS.choose(&mut rng).unwrap_or(&100),
                model_resources: resources(&mut rng, "mv-", 2..=5),
                sandbox_resources: resources(&mut rng, "sbx-", 1..=4),
            })
            .collect();
        let mut users = USER_NAMES.to_vec();
        users.shuffle(&mut rng);
        let user_emails = users
            .into_iter()
            .take(rng.random_range(3..=5))
            .map(|user| format!("{user}@company{company_id}.example.com").into())
            .collect();
        Company {
            organizations,
            user_emails,
        }
    }
}

fn resources(
    rng: &mut impl Rng,
    prefix: &str,
    count: std::ops::RangeInclusive<usize>,
) -> Vec<Resource> {
    (0..rng.random_range(count))
        .map(|_| Resource {
            id: format!("{prefix}{}", crate::random_lower_alnum(rng, 8)).into(),
            region: pick_weighted(rng, REGIONS, |&(_, weight)| weight).0,
            model: rng.random_range(0..MODELS.len()),
        })
        .collect()
}

/// Picks an item with probability proportional to `weight(item)`.
pub(super) fn pick_weighted<'a, T>(
    rng: &mut impl Rng,
    items: &'a [T],
    weight: impl Fn(&T) -> u32,
) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut roll = rng.random_range(0..total);
    for item in items {
        if roll < weight(item) {
            return item;
        }
        roll -= weight(item);
    }
    unreachable!("roll is below the total weight")
}

/// Endless source of orders for one company.
pub struct OrderGenerator<R> {
    rng: R,
    plan: Plan,
    company: Company,
    /// `now` rounded down to the hour: orders fill whole hours before it.
    anchor_hour: i64,
    counter: u64,
}

impl<R: Rng> OrderGenerator<R> {
    pub fn new(rng: R, plan: Plan) -> Self {
        let now = plan.now.timestamp();
        OrderGenerator {
            rng,
            company: Company::new(plan.company_id),
            anchor_hour: now - now.rem_euclid(3600),
            plan,
            counter: 0,
        }
    }

    pub fn next_order(&mut self) -> Order {
        self.counter += 1;
        let status = self.status();
        let (start_time, end_time, paid_time) = self.times(status);
        let org_index = self.rng.random_range(0..self.company.organizations.len());
        let org = &self.company.organizations[org_index];
        let (resource, usage) = bill_resource(&mut self.rng, org);
        let discount_price = usage.list_price.mul_ratio(org.discount_percent, 100);
        let total_price = usage.quantity.mul_round(discount_price);
        let (cash_account, bonus_account, coupon) = payments(&mut self.rng, status, total_price);
        Order {
            order_no: format!("{}{:08}", self.plan.order_no_prefix, self.counter),
            company_id: self.plan.company_id,
            organization_id: org.id,
            organization_name: org.name.clone(),
            user_email: self
                .company
                .user_emails
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_default(),
            status,
            order_type: pick_weighted(&mut self.rng, ORDER_TYPES, |&(_, w)| w).0,
            charge_type: pick_weighted(&mut self.rng, CHARGE_TYPES, |&(_, w)| w).0,
            product_code: usage.product_code,
            model_id: usage.model.map_or("", |model| model.id),
            model_name: usage.model.map_or("", |model| model.name),
            resource_id: resource.id.clone(),
            region: resource.region,
            pricing_sku: usage.sku,
            pricing_unit: usage.pricing_unit,
            quantity: usage.quantity,
            list_price: usage.list_price,
            discount_price,
            original_price: usage.quantity.mul_round(usage.list_price),
            total_price,
            cash_account,
            bonus_account,
            coupon,
            currency: "CNY",
            start_time,
            end_time,
            paid_time,
            created_at: end_time,
        }
    }

    fn status(&mut self) -> OrderStatus {
        match self.rng.random_range(0..1000) {
            roll if roll < PAID_PER_MILLE => OrderStatus::Paid,
            roll if roll < PAID_PER_MILLE + REVOKED_PER_MILLE => OrderStatus::Revoked,
            _ => OrderStatus::Unpaid,
        }
    }

    /// An hour-long billing period in the last `days` days; paid a few minutes
    /// after it ended (never after `now`).
    fn times(
        &mut self,
        status: OrderStatus,
    ) -> (DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>) {
        let hours_back = self
            .rng
            .random_range(1..=i64::from(self.plan.days.max(1)) * 24);
        let start = self.anchor_hour - hours_back * 3600;
        let end = start + 3600;
        let paid = (status == OrderStatus::Paid)
            .then(|| (end + self.rng.random_range(60..=1800)).min(self.plan.now.timestamp()));
        (utc(start), utc(end), paid.map(utc))
    }
}

/// A resource of `org` and what it used in an hour.
fn bill_resource<'a>(rng: &mut impl Rng, org: &'a Organization) -> (&'a Resource, Usage) {
    let model_order = rng.random_range(0..100) < MODELVERSE_PERCENT;
    let resources = if model_order {
        &org.model_resources
    } else {
        &org.sandbox_resources
    };
    let resource = &resources[rng.random_range(0..resources.len())];
    let usage = if model_order {
        model_usage(rng, &MODELS[resource.model])
    } else {
        sandbox_usage(rng)
    };
    (resource, usage)
}

fn utc(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(seed: u64) -> OrderGenerator<StdRng> {
        let plan = Plan {
            company_id: 7,
            days: 30,
            now: utc(1_795_000_000),
            order_no_prefix: "T-".to_owned(),
        };
        OrderGenerator::new(StdRng::seed_from_u64(seed), plan)
    }

    fn decimals(text: &str) -> usize {
        text.split_once('.')
            .map_or(0, |(_, fraction)| fraction.len())
    }

    #[test]
    fn payments_sum_to_the_total_exactly() {
        let mut orders = generator(1);
        for _ in 0..10_000 {
            let order = orders.next_order();
            let paid = order.cash_account + order.bonus_account + order.coupon;
            match order.status {
                OrderStatus::Paid => assert_eq!(paid, order.total_price, "{order:?}"),
                _ => assert_eq!(paid, Fixed8::ZERO, "{order:?}"),
            }
            assert!(order.cash_account >= Fixed8::ZERO && order.bonus_account >= Fixed8::ZERO);
            assert!(order.total_price <= order.original_price, "{order:?}");
        }
    }

    #[test]
    fn amounts_are_written_with_at_most_eight_decimals() {
        let mut orders = generator(2);
        let mut row = String::new();
        for _ in 0..1_000 {
            row.clear();
            orders
                .next_order()
                .write_copy_row(&mut row)
                .expect("writing to a String");
            let fields: Vec<&str> = row.trim_end_matches('\n').split('\t').collect();
            assert_eq!(fields.len(), COPY_COLUMNS.split(',').count(), "{row}");
            for amount in &fields[15..23] {
                assert!(decimals(amount) <= 8, "{amount} in {row}");
                assert!(amount.parse::<f64>().is_ok(), "{amount} in {row}");
            }
        }
    }

    #[test]
    fn statuses_are_mostly_paid_some_unpaid_few_revoked() {
        let mut orders = generator(3);
        let (mut paid, mut revoked, mut unpaid) = (0, 0, 0);
        for _ in 0..10_000 {
            match orders.next_order().status {
                OrderStatus::Paid => paid += 1,
                OrderStatus::Revoked => revoked += 1,
                OrderStatus::Unpaid => unpaid += 1,
            }
        }
        assert!((6_700..=7_300).contains(&paid), "paid {paid}");
        assert!((100..=300).contains(&revoked), "revoked {revoked}");
        assert!((2_500..=3_100).contains(&unpaid), "unpaid {unpaid}");
    }

    #[test]
    fn orders_fall_in_the_window_and_are_paid_after_they_end() {
        let mut orders = generator(4);
        let now = utc(1_795_000_000);
        for _ in 0..10_000 {
            let order = orders.next_order();
            assert!(
                order.start_time >= now - chrono::Duration::days(31),
                "{order:?}"
            );
            assert!(order.end_time <= now && order.created_at == order.end_time);
            if let Some(paid) = order.paid_time {
                assert!(paid > order.end_time && paid <= now, "{order:?}");
            }
            assert_eq!(order.model_id.is_empty(), order.product_code == "sandbox");
        }
    }

    #[test]
    fn same_seed_gives_same_rows() {
        let (mut first, mut second) = (generator(5), generator(5));
        let (mut a, mut b) = (String::new(), String::new());
        for _ in 0..100 {
            first
                .next_order()
                .write_copy_row(&mut a)
                .expect("writing to a String");
            second
                .next_order()
                .write_copy_row(&mut b)
                .expect("writing to a String");
        }
        assert_eq!(a, b);
    }
}
