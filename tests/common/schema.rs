//! Checks a JSON value against one of the spec's payload schemas, copied
//! into `tests/fixtures/schemas.json` (tests must not read `../shared`).
//!
//! Supports what those schemas use: `type` (object, string, integer,
//! boolean, array), `properties`, `enum`, `items`, and `format` (`uuid`,
//! `int64`). Properties not in the schema are allowed, as the schemas do not
//! forbid them.
#![allow(dead_code)]

use serde_json::Value;

/// The schema named `name` from the copied `schemas.json`.
pub fn schema(name: &str) -> Value {
    let text = include_str!("../fixtures/schemas.json");
    let all: Value = serde_json::from_str(text).expect("schemas.json parses");
    all.get(name).unwrap_or_else(|| panic!("no schema {name}")).clone()
}

/// Panics with every violation when `value` does not match schema `name`.
pub fn assert_matches(name: &str, value: &Value) {
    let mut errors = Vec::new();
    check(&schema(name), value, "$", &mut errors);
    assert!(errors.is_empty(), "{value} does not match {name}: {errors:?}");
}

fn check(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            other => panic!("schema type {other} not supported"),
        };
        if !ok {
            errors.push(format!("{at}: expected {kind}, got {value}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    match schema.get("format").and_then(Value::as_str) {
        Some("uuid") if value.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_err()) => {
            errors.push(format!("{at}: {value} is not a UUID"));
        }
        Some("int64") if value.as_i64().is_none() => {
            errors.push(format!("{at}: {value} is not an int64"));
        }
        _ => {}
    }
    if let (Some(properties), Some(object)) =
        (schema.get("properties").and_then(Value::as_object), value.as_object())
    {
        for (key, property) in properties {
            if let Some(field) = object.get(key) {
                check(property, field, &format!("{at}.{key}"), errors);
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            check(items, item, &format!("{at}[{index}]"), errors);
        }
    }
}

#[test]
fn the_checker_refuses_what_the_schema_forbids() {
    assert_matches("Receipt", &serde_json::json!({"type": "READ", "timestamps": [1, 2]}));
    let mut errors = Vec::new();
    let bad = serde_json::json!({"type": "SEEN", "timestamps": ["x"]});
    check(&schema("Receipt"), &bad, "$", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
    let mut errors = Vec::new();
    check(
        &schema("ProvisioningUUIDPayload"),
        &serde_json::json!({"uuid": "nope"}),
        "$",
        &mut errors,
    );
    assert_eq!(errors.len(), 1);
}
