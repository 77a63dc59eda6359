//! Properties of the normalised request and of signatures: equal requests
//! hash equal whatever the encoding (query/form or JSON, `Key.N` indices in
//! any order with gaps, repeated `Key`, the literal `Key.N`, JSON arrays,
//! duplicated items, blanks, time zone spelling), and any change to a signed
//! parameter breaks the signature.

use std::collections::BTreeSet;

use ordersum_model::{Limits, Params, SummaryRequest, signature};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// One list parameter and its items, as the client means them.
#[derive(Debug, Clone)]
struct List {
    key: &'static str,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    Int(i64),
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Text(text) => text.clone(),
            Item::Int(n) => n.to_string(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Item::Text(text) => Value::String(text.clone()),
            Item::Int(n) => Value::from(*n),
        }
    }
}

/// What the client asks for.
#[derive(Debug, Clone)]
struct Logical {
    start: i64,
    end: i64,
    time_zone: Option<&'static str>,
    lists: Vec<List>,
}

fn text_items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec("[a-z0-9][a-z0-9-]{0,11}".prop_map(Item::Text), 0..6)
}

fn int_items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec((-3i64..50).prop_map(Item::Int), 0..6)
}

fn product_items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(
        prop::sample::select(vec!["modelverse", "sandbox"]).prop_map(|p| Item::Text(p.into())),
        0..4,
    )
}

fn logical() -> impl Strategy<Value = Logical> {
    (
        0i64..2_000_000_000,
        1i64..=366 * 24 * 3600,
        prop::option::of(prop::sample::select(vec![
            "UTC",
            "Asia/Shanghai",
            "America/New_York",
        ])),
        (text_items(), text_items(), int_items(), int_items()),
        (int_items(), product_items()),
    )
        .prop_map(
            |(start, span, time_zone, (regions, resources, orders, units), (orgs, products))| {
                Logical {
                    start,
                    end: start + span,
                    time_zone,
                    lists: vec![
                        List {
                            key: "Regions",
                            items: regions,
                        },
                        List {
                            key: "ResourceIds",
                            items: resources,
                        },
                        List {
                            key: "OrderTypes",
                            items: orders,
                        },
                        List {
                            key: "PricingUnits",
                            items: units,
                        },
                        List {
                            key: "OrganizationIds",
                            items: orgs,
                        },
                        List {
                            key: "ProductCodes",
                            items: products,
                        },
                    ],
                }
            },
        )
}

/// A small deterministic generator, so one `u64` picks a whole encoding.
struct Picks(u64);

impl Picks {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// The reference encoding: `Key.0`, `Key.1`, … in order, as a form.
fn reference(logical: &Logical) -> Params {
    let mut params = Params::from_pairs([
        ("StartTime", logical.start.to_string()),
        ("EndTime", logical.end.to_string()),
    ]);
    if let Some(zone) = logical.time_zone {
        params.push("TimeZone", zone);
    }
    for list in &logical.lists {
        for (index, item) in list.items.iter().enumerate() {
            params.push(format!("{}.{index}", list.key), item.text());
        }
    }
    params
}

/// The same request spelled as `picks` says: a form (through the URL
/// encoder) or a JSON body, items duplicated, padded, shuffled into sparse
/// `Key.N` indices, repeated `Key`s, the literal `Key.N` or JSON arrays.
fn encode(logical: &Logical, picks: &mut Picks) -> Params {
    let json = picks.next(2) == 0;
    let mut pairs: Vec<(String, String)> = vec![
        ("StartTime".into(), logical.start.to_string()),
        ("EndTime".into(), logical.end.to_string()),
    ];
    let mut object = Map::new();
    if let Some(zone) = logical.time_zone {
        let zone = match picks.next(3) {
            0 => zone.to_lowercase(),
            1 => zone.to_uppercase(),
            _ => zone.to_owned(),
        };
        pairs.push(("TimeZone".into(), format!(" {zone} ")));
    }
    for list in &logical.lists {
        let mut items = list.items.clone();
        if !items.is_empty() && picks.next(2) == 0 {
            let again = items[picks.next(items.len() as u64) as usize].clone();
            items.push(again);
        }
        for i in (1..items.len()).rev() {
            items.swap(i, picks.next(i as u64 + 1) as usize);
        }
        if json && picks.next(2) == 0 {
            object.insert(
                list.key.into(),
                Value::Array(items.iter().map(Item::json).collect()),
            );
            continue;
        }
        // Sparse, increasing indices; the spellings mixed item by item.
        let mut next_index = picks.next(3);
        for item in items {
            let text = match picks.next(3) {
                0 => format!(" {} ", item.text()),
                _ => item.text(),
            };
            let key = match picks.next(3) {
                0 => format!("{}.{next_index}", list.key),
                1 => list.key.to_owned(),
                _ => format!("{}.N", list.key),
            };
            next_index += 1 + picks.next(4);
            pairs.push((key, text));
        }
    }
    if json {
        for (key, value) in pairs {
            // JSON has one value per key: repeated keys go in arrays.
            match object.get_mut(&key) {
                Some(Value::Array(items)) => items.push(Value::String(value)),
                Some(other) => {
                    let first = other.take();
                    *other = Value::Array(vec![first, Value::String(value)]);
                }
                None => {
                    object.insert(key, Value::String(value));
                }
            }
        }
        let body = serde_json::to_vec(&Value::Object(object)).expect("json");
        Params::from_json(&body).expect("an object")
    } else {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        Params::from_urlencoded(form.as_bytes())
    }
}

fn validate(params: &Params) -> SummaryRequest {
    SummaryRequest::from_params(params, &Limits::default()).expect("a valid request")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn equal_requests_hash_equal_whatever_their_encoding(
        logical in logical(),
        seed_a in 1u64..,
        seed_b in 1u64..,
    ) {
        let expected = validate(&reference(&logical));
        for seed in [seed_a, seed_b] {
            let params = encode(&logical, &mut Picks(seed));
            let request = validate(&params);
            prop_assert_eq!(&request, &expected, "{:?}", params);
            prop_assert_eq!(request.hash(), expected.hash());
        }
    }

    #[test]
    fn a_request_with_another_item_hashes_differently(
        logical in logical(),
        extra in "[a-z]{13}",
    ) {
        let before = validate(&reference(&logical));
        let mut params = reference(&logical);
        params.push("Regions", extra);
        prop_assert_ne!(validate(&params).hash(), before.hash());
    }

    #[test]
    fn any_change_to_a_signed_parameter_breaks_the_signature(
        pairs in prop::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,8}", "[ -~]{0,12}"), 1..8),
        private_key in "[0-9a-f]{40}",
        pick in any::<prop::sample::Index>(),
        new_value in "[ -~]{0,12}",
        added in ("[A-Za-z.]{1,8}", "[ -~]{0,8}"),
    ) {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(key, _)| key != "Signature")
            .collect();
        prop_assume!(!pairs.is_empty());
        let signature = signature::sign(&Params::from_pairs(pairs.clone()), &private_key);
        let signed = |pairs: &[(String, String)]| {
            let mut params = Params::from_pairs(pairs.iter().cloned());
            params.push("Signature", signature.clone());
            params
        };
        prop_assert!(signature::verify(&signed(&pairs), &private_key, &signature));

        let at = pick.index(pairs.len());
        if pairs[at].1 != new_value {
            let mut changed = pairs.clone();
            changed[at].1 = new_value;
            prop_assert!(!signature::verify(&signed(&changed), &private_key, &signature));
        }

        let mut removed = pairs.clone();
        removed.remove(at);
        prop_assert!(!signature::verify(&signed(&removed), &private_key, &signature));

        if added.0 != "Signature" {
            let mut more = pairs.clone();
            more.push(added);
            prop_assert!(!signature::verify(&signed(&more), &private_key, &signature));
        }

        // Another private key signs differently.
        let other: String = private_key.chars().rev().collect();
        if other != private_key {
            prop_assert!(!signature::verify(&signed(&pairs), &other, &signature));
        }
    }
}

#[test]
fn the_encoder_really_varies_the_spelling() {
    // Guards the property above against an encoder that always writes the
    // reference form: over a few seeds every spelling shows up.
    let logical = Logical {
        start: 100,
        end: 200,
        time_zone: Some("Asia/Shanghai"),
        lists: vec![List {
            key: "Regions",
            items: vec![Item::Text("a".into()), Item::Text("b".into())],
        }],
    };
    let mut seen = BTreeSet::new();
    for seed in 1..200u64 {
        let params = encode(&logical, &mut Picks(seed));
        let signing = params.signing_string();
        for (spelling, marker) in [
            ("indexed", "Regions.0"),
            ("literal", "Regions.N"),
            ("padded", " a "),
            ("array", "Regionsab"),
            ("array", "Regionsba"),
            ("lowercase zone", "asia/shanghai"),
        ] {
            if signing.contains(marker) {
                seen.insert(spelling);
            }
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}
