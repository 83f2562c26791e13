//! The OpenAPI document: checked in as `crates/api/openapi.json` and equal
//! to the generated one, structurally valid OpenAPI 3.1, and in agreement
//! with the binder (a body the schema accepts binds, and one it refuses
//! does not).

use std::collections::BTreeSet;
use std::path::Path;

use api::method::{Fallback, Kind};
use api::{BACKEND, json as transport, openapi};
use serde_json::{Map, Value, json};

#[test]
fn checked_in_document_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = serde_json::to_string_pretty(&openapi::backend_document()).expect("json") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).expect("crates/api/openapi.json exists");
    assert!(checked_in == generated, "crates/api/openapi.json is stale; UPDATE_GOLDEN=1 rewrites it");
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

const TYPES: &[&str] = &["null", "boolean", "object", "array", "number", "string", "integer"];

/// Checks a schema object's keywords, then its subschemas.
fn check_schema(schema: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        problems.push(format!("{path}: a schema must be an object"));
        return;
    };
    if let Some(t) = map.get("type") {
        let names: Vec<&Value> = match t {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for name in names {
            if !name.as_str().is_some_and(|n| TYPES.contains(&n)) {
                problems.push(format!("{path}: type {name} is not a JSON Schema type"));
            }
        }
    }
    if let Some(required) = map.get("required") {
        let properties = map.get("properties").and_then(Value::as_object);
        for r in required.as_array().into_iter().flatten() {
            if !r.as_str().is_some_and(|r| properties.is_some_and(|p| p.contains_key(r))) {
                problems.push(format!("{path}: required {r} is not a property"));
            }
        }
    }
    if let Some(e) = map.get("enum")
        && e.as_array().is_none_or(|values| values.is_empty())
    {
        problems.push(format!("{path}: enum must be a non-empty array"));
    }
    if let Some(properties) = map.get("properties") {
        match properties.as_object() {
            Some(properties) => {
                for (name, sub) in properties {
                    check_schema(sub, &format!("{path}/properties/{name}"), problems);
                }
            }
            None => problems.push(format!("{path}: properties must be an object")),
        }
    }
    for keyword in ["oneOf", "anyOf", "allOf"] {
        if let Some(choices) = map.get(keyword) {
            match choices.as_array() {
                Some(choices) if !choices.is_empty() => {
                    for (i, sub) in choices.iter().enumerate() {
                        check_schema(sub, &format!("{path}/{keyword}/{i}"), problems);
                    }
                }
                _ => problems.push(format!("{path}: {keyword} must be a non-empty array")),
            }
        }
    }
    for keyword in ["items", "additionalProperties"] {
        if let Some(sub) = map.get(keyword)
            && !sub.is_boolean()
        {
            check_schema(sub, &format!("{path}/{keyword}"), problems);
        }
    }
}

#[test]
fn document_is_structurally_valid_openapi_3_1() {
    let doc = openapi::backend_document();
    let mut problems = Vec::new();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let declared_tags: BTreeSet<&str> =
        doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), BACKEND.methods().len());
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        if !path.starts_with('/') {
            problems.push(format!("{path}: paths start with /"));
        }
        let item = item.as_object().expect("path item");
        for (verb, op) in item {
            if !["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&verb.as_str()) {
                problems.push(format!("{path}: {verb} is not an HTTP method"));
            }
            let id = op["operationId"].as_str().unwrap_or_default();
            if !operation_ids.insert(id.to_owned()) {
                problems.push(format!("{path}: operationId {id} is not unique"));
            }
            for tag in op["tags"].as_array().into_iter().flatten() {
                if !tag.as_str().is_some_and(|t| declared_tags.contains(t)) {
                    problems.push(format!("{path}: tag {tag} is not declared"));
                }
            }
            let responses = op["responses"].as_object().expect("responses");
            if responses.is_empty() {
                problems.push(format!("{path}: no responses"));
            }
            for code in responses.keys() {
                let valid = code == "default"
                    || (code.len() == 3 && code.parse::<u16>().is_ok_and(|c| (100..600).contains(&c)));
                if !valid {
                    problems.push(format!("{path}: response key {code} is not a status"));
                }
            }
            for requirement in op["security"].as_array().expect("security") {
                for scheme in requirement.as_object().expect("requirement").keys() {
                    if !schemes.contains_key(scheme) {
                        problems.push(format!("{path}: security scheme {scheme} is not declared"));
                    }
                }
            }
            if op["requestBody"]["content"]["application/json"]["schema"].is_null() {
                problems.push(format!("{path}: no JSON request schema"));
            }
        }
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        if resolve(&doc, &r).is_none() {
            problems.push(format!("$ref {r} does not resolve"));
        }
    }
    for (path, item) in paths {
        let schema = &item["post"]["requestBody"]["content"]["application/json"]["schema"];
        check_schema(schema, &format!("{path} request"), &mut problems);
    }
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        check_schema(schema, &format!("#/components/schemas/{name}"), &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A small JSON Schema check for the keywords the document uses: `$ref`,
/// `type`, `enum`, `oneOf`, `anyOf`, `properties`, `required`,
/// `additionalProperties`, `minLength`, `minProperties`.
fn valid(doc: &Value, schema: &Value, value: &Value) -> bool {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return resolve(doc, r).is_some_and(|s| valid(doc, s, value));
    }
    if let Some(Value::Array(choices)) = schema.get("oneOf") {
        return choices.iter().filter(|c| valid(doc, c, value)).count() == 1;
    }
    if let Some(Value::Array(choices)) = schema.get("anyOf") {
        return choices.iter().any(|c| valid(doc, c, value));
    }
    if let Some(t) = schema.get("type") {
        let names: Vec<&str> = match t {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let type_ok = names.iter().any(|n| match *n {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "string" => value.is_string(),
            _ => false,
        });
        if !type_ok {
            return false;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return false;
    }
    if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), value.as_str())
        && (s.chars().count() as u64) < min
    {
        return false;
    }
    if let (Some(min), Some(object)) = (schema.get("minProperties").and_then(Value::as_u64), value.as_object())
        && (object.len() as u64) < min
    {
        return false;
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required")
            && !required.iter().filter_map(Value::as_str).all(|r| object.contains_key(r))
        {
            return false;
        }
        for (key, member) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) if !valid(doc, s, member) => return false,
                Some(_) => {}
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => return false,
                None => {}
            }
        }
    }
    true
}

fn sample(kind: Kind) -> Value {
    match kind {
        Kind::Any => json!({"anything": [1]}),
        Kind::Str => json!("text"),
        Kind::Int => json!(3),
        Kind::Number => json!(2.5),
        Kind::Bool => json!(true),
        Kind::Id => json!("5f0c"),
        Kind::Map => json!({"k": "v"}),
        Kind::List => json!([1, 2]),
        Kind::OneOf(allowed) => json!(allowed[allowed.len() - 1]),
    }
}

/// A value of the wrong kind for `kind`, if there is one.
fn wrong(kind: Kind) -> Option<Value> {
    match kind {
        Kind::Any => None,
        Kind::Str | Kind::OneOf(_) | Kind::Id => Some(json!([true])),
        Kind::Int | Kind::Number | Kind::Bool | Kind::Map | Kind::List => Some(json!("text")),
    }
}

#[test]
fn schema_and_binder_agree_on_bodies() {
    let doc = openapi::backend_document();
    let mut disagreements = Vec::new();
    for method in BACKEND.methods() {
        let schema = &doc["paths"][format!("{}{}", transport::PREFIX, method.name)]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        let judge = |body: Value| {
            let schema_ok = valid(&doc, schema, &body);
            let (args, kwargs) = transport::parse_request(body.to_string().as_bytes()).expect("a JSON object parses");
            let binder_ok = BACKEND.bind(method.name, args, kwargs).is_ok();
            (schema_ok, binder_ok)
        };
        let mut all: Map<String, Value> = Map::new();
        let mut required: Map<String, Value> = Map::new();
        for p in method.params {
            all.insert(p.name.into(), sample(p.kind));
            if p.is_required() {
                required.insert(p.name.into(), sample(p.kind));
            }
        }
        let mut cases: Vec<(String, Value, bool)> = vec![
            ("all parameters".into(), Value::Object(all.clone()), true),
            ("required parameters".into(), Value::Object(required.clone()), true),
            ("envelope".into(), json!({"kwargs": all}), true),
            ("unknown parameter".into(), json!({"no_such_parameter": 1}), false),
        ];
        for p in method.params {
            if p.is_required() {
                let mut missing = required.clone();
                missing.remove(p.name);
                cases.push((format!("without {}", p.name), Value::Object(missing), false));
            } else if p.default != Some(Fallback::Null) || !matches!(p.kind, Kind::Any) {
                let mut null = required.clone();
                null.insert(p.name.into(), Value::Null);
                cases.push((format!("{} null", p.name), Value::Object(null), true));
            }
            if let Some(bad) = wrong(p.kind) {
                let mut body = required.clone();
                body.insert(p.name.into(), bad);
                cases.push((format!("{} of the wrong kind", p.name), Value::Object(body), false));
            }
        }
        for (case, body, expected) in cases {
            let (schema_ok, binder_ok) = judge(body.clone());
            if schema_ok != expected || binder_ok != expected {
                disagreements.push(format!(
                    "{} {case}: schema {schema_ok}, binder {binder_ok}, expected {expected}: {body}",
                    method.name
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
