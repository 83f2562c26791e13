//! The OpenAPI 3.1 document of the JSON transport, generated from a method
//! table so it cannot drift from what the server binds. The backend's
//! document is checked in as `crates/api/openapi.json` (a test keeps it
//! equal to the generated one; `UPDATE_GOLDEN=1` rewrites it).
//!
//! Every method is `POST /api/<method>` with operation id `<method>`, tagged
//! with its group. Its request body is the object of named arguments
//! (required ones listed, unknown ones refused) or the `{args, kwargs}`
//! envelope; the positional array form is described in words only, since
//! an array schema cannot say which position is which. Methods that need a
//! login require HTTP Basic; the others accept it.

use serde_json::{Map, Value, json};

use crate::method::{Access, Kind, Method, Table};

/// Title, version and description of the document.
#[derive(Clone, Copy, Debug)]
pub struct Info<'a> {
    /// The API's title.
    pub title: &'a str,
    /// The API's version.
    pub version: &'a str,
    /// A paragraph about it.
    pub description: &'a str,
}

/// The JSON schema of one parameter kind; `nullable` also allows `null`
/// (an optional parameter's "not given").
fn kind_schema(kind: Kind, nullable: bool) -> Value {
    let typed = |name: &str| if nullable { json!({"type": [name, "null"]}) } else { json!({"type": name}) };
    match kind {
        Kind::Any => json!({}),
        Kind::Str => typed("string"),
        Kind::Int => {
            let mut schema = typed("integer");
            schema["format"] = json!("int64");
            schema
        }
        Kind::Number => typed("number"),
        Kind::Bool => typed("boolean"),
        Kind::Id => {
            let mut choices =
                vec![json!({"type": "integer", "format": "int64"}), json!({"type": "string", "minLength": 1})];
            if nullable {
                choices.push(json!({"type": "null"}));
            }
            json!({ "oneOf": choices })
        }
        Kind::Map => {
            let mut schema = typed("object");
            schema["additionalProperties"] = json!(true);
            schema
        }
        Kind::List => typed("array"),
        Kind::OneOf(allowed) => {
            let mut values: Vec<Value> = allowed.iter().map(|a| json!(a)).collect();
            if nullable {
                values.push(Value::Null);
            }
            let mut schema = typed("string");
            schema["enum"] = Value::Array(values);
            schema
        }
    }
}

fn parameter_schema(method: &Method) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in method.params {
        let mut schema = kind_schema(p.kind, !p.is_required());
        match p.default {
            None => required.push(json!(p.name)),
            Some(default) => schema["default"] = default.to_json(),
        }
        let description = match p.kind {
            Kind::OneOf(_) => format!("{}; {}", p.doc, p.kind.describe()),
            _ => p.doc.to_owned(),
        };
        schema["description"] = json!(description);
        properties.insert(p.name.to_owned(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

fn operation(method: &Method) -> Value {
    let security = match method.access {
        Access::User => json!([{"basicAuth": []}]),
        Access::Anyone => json!([{}, {"basicAuth": []}]),
    };
    let login = match method.access {
        Access::User => "Needs a login.",
        Access::Anyone => "Open to anyone.",
    };
    json!({
        "operationId": method.name,
        "summary": method.doc,
        "description": format!(
            "`{}` (XML-RPC: the same name and arguments). {login} The body may also be an array of the arguments in this order: {}.",
            method.signature(),
            if method.params.is_empty() { "none".to_owned() } else {
                method.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            }
        ),
        "tags": [method.group],
        "security": security,
        "requestBody": {
            "required": false,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            parameter_schema(method),
                            {"$ref": "#/components/schemas/Envelope"},
                        ]
                    }
                }
            }
        },
        "responses": {
            "200": {
                "description": "The method's result.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}
            },
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
            "500": {"$ref": "#/components/responses/Error"},
        }
    })
}

/// The OpenAPI 3.1 document for `table` served under
/// [`crate::json::PREFIX`].
pub fn document(table: &Table, info: &Info<'_>) -> Value {
    let mut paths = Map::new();
    for method in table.methods() {
        paths.insert(format!("{}{}", crate::json::PREFIX, method.name), json!({ "post": operation(method) }));
    }
    let mut groups: Vec<&str> = Vec::new();
    for method in table.methods() {
        if !groups.contains(&method.group) {
            groups.push(method.group);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": info.title, "version": info.version, "description": info.description},
        "tags": groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Envelope": {
                    "type": "object",
                    "description": "Positional and keyword arguments, as ToMaTo's ssl+jsonrpc carried them; at least one of the two (an empty object is named arguments).",
                    "minProperties": 1,
                    "properties": {
                        "args": {"type": ["array", "null"]},
                        "kwargs": {"type": ["object", "null"], "additionalProperties": true},
                    },
                    "additionalProperties": false,
                },
                "Result": {
                    "type": "object",
                    "required": ["result"],
                    "properties": {"result": {"description": "The method's return value (null for none)."}},
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "code", "message"],
                            "properties": {
                                "type": {"type": "string", "enum": ["user", "internal", "transport"]},
                                "code": {"type": "string", "description": "ToMaTo's error code, e.g. invalid_value, entity_does_not_exist."},
                                "message": {"type": "string"},
                                "data": {"description": "Details for programs (method, parameter, allowed values, ...)."},
                            },
                        }
                    },
                },
            },
            "responses": {
                "Error": {
                    "description": "The call failed; the status follows the error code.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        }
    })
}

/// The backend's document as checked in.
pub fn backend_document() -> Value {
    document(
        &crate::backend::BACKEND,
        &Info {
            title: "ToMaTo-rs backend",
            version: env!("CARGO_PKG_VERSION"),
            description: "ToMaTo's backend API over JSON: POST /api/<method> with named arguments. The same methods \
                          are served over XML-RPC with ToMaTo's conventions.",
        },
    )
}
