//! Fuzz target: any bytes through the XML-RPC call and response readers. A
//! body that reads must write and read back as itself, its arguments must
//! survive the trip through JSON that methods see, and binding them to the
//! backend's table must not panic.

#![no_main]

use api::xmlrpc::{self, Limits, Response, XmlValue};
use libfuzzer_sys::fuzz_target;

/// Small limits so deep nesting and size checks are reached quickly.
const LIMITS: Limits = Limits { max_bytes: 64 << 10, max_depth: 40 };

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = xmlrpc::parse_call(data, &LIMITS) {
        let written = xmlrpc::write_call(&call.method, &call.params);
        let again = xmlrpc::parse_call(written.as_bytes(), &Limits::DEFAULT).expect("our own call reads");
        assert_eq!(again, call, "a call round-trips");
        let (args, kwargs) = call.args_kwargs();
        // JSON and back keeps every value but the types JSON lacks.
        for value in &call.params {
            if !lossy(value) {
                assert_eq!(&XmlValue::from_json(&value.to_json()), value, "a value survives JSON");
            }
        }
        let outcome = api::BACKEND.bind(&call.method, args, kwargs).map(|b| serde_json::Value::Object(b.into_map()));
        let response = xmlrpc::write_response(&outcome.map_err(api::RpcError::from));
        xmlrpc::parse_response(response.as_bytes(), &Limits::DEFAULT).expect("our own response reads");
    }
    if let Ok(response) = xmlrpc::parse_response(data, &LIMITS) {
        let written = match &response {
            Response::Value(value) => xmlrpc::write_value_response(value),
            Response::Fault(fault) => xmlrpc::write_fault(fault),
        };
        let again = xmlrpc::parse_response(written.as_bytes(), &Limits::DEFAULT).expect("our own response reads");
        assert_eq!(again, response, "a response round-trips");
    }
});

/// Whether `value` holds a type JSON has no word for (it arrives as a
/// string).
fn lossy(value: &XmlValue) -> bool {
    match value {
        XmlValue::Base64(_) | XmlValue::DateTime(_) => true,
        XmlValue::Array(items) => items.iter().any(lossy),
        XmlValue::Struct(members) => members.values().any(lossy),
        _ => false,
    }
}
