//! Unit and property tests of the XML-RPC codec.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::BACKEND;

/// Collects a mismatch instead of stopping at the first, so one run shows
/// every message that changed.
macro_rules! soft {
    ($failures:ident, $actual:expr, $expected:expr $(,)?) => {{
        let (actual, expected) = ($actual, $expected);
        if actual != expected {
            $failures.push(format!("{actual:?}\n   expected {expected:?}"));
        }
    }};
}

fn call(body: &str) -> Result<Call, XmlRpcError> {
    parse_call(body.as_bytes(), &Limits::DEFAULT)
}

fn wrap(values: &str) -> String {
    format!("<?xml version='1.0'?><methodCall><methodName>m</methodName><params>{values}</params></methodCall>")
}

fn one(value: &str) -> Result<XmlValue, XmlRpcError> {
    let mut parsed = call(&wrap(&format!("<param>{value}</param>")))?;
    assert_eq!(parsed.params.len(), 1);
    Ok(parsed.params.remove(0))
}

#[test]
fn every_type_reads() {
    assert_eq!(one("<value><int>42</int></value>"), Ok(XmlValue::Int(42)));
    assert_eq!(one("<value><i4> -7 </i4></value>"), Ok(XmlValue::Int(-7)));
    assert_eq!(one("<value><i8>9007199254740993</i8></value>"), Ok(XmlValue::Int(9_007_199_254_740_993)));
    assert_eq!(one("<value><ex:i8 xmlns:ex='x'>+5</ex:i8></value>"), Ok(XmlValue::Int(5)));
    assert_eq!(one("<value><boolean>1</boolean></value>"), Ok(XmlValue::Bool(true)));
    assert_eq!(one("<value><boolean>0</boolean></value>"), Ok(XmlValue::Bool(false)));
    assert_eq!(one("<value><string> a &amp; b </string></value>"), Ok(XmlValue::String(" a & b ".into())));
    assert_eq!(one("<value>untyped &lt;text&gt;</value>"), Ok(XmlValue::String("untyped <text>".into())));
    assert_eq!(one("<value></value>"), Ok(XmlValue::String(String::new())));
    assert_eq!(one("<value/>"), Ok(XmlValue::String(String::new())));
    assert_eq!(one("<value><string/></value>"), Ok(XmlValue::String(String::new())));
    assert_eq!(one("<value><string><![CDATA[<raw>]]></string></value>"), Ok(XmlValue::String("<raw>".into())));
    assert_eq!(one("<value><string>&#x263A;&#13;&#10;</string></value>"), Ok(XmlValue::String("\u{263a}\r\n".into())));
    assert_eq!(one("<value><string>a\r\nb</string></value>"), Ok(XmlValue::String("a\nb".into())));
    assert_eq!(one("<value><double>-1.5e3</double></value>"), Ok(XmlValue::Double(-1500.0)));
    assert_eq!(one("<value><double>3</double></value>"), Ok(XmlValue::Double(3.0)));
    assert_eq!(
        one("<value><dateTime.iso8601>20240102T03:04:05</dateTime.iso8601></value>"),
        Ok(XmlValue::DateTime("20240102T03:04:05".into()))
    );
    assert_eq!(
        one("<value><dateTime.iso8601>2024-01-02T03:04:05Z</dateTime.iso8601></value>"),
        Ok(XmlValue::DateTime("2024-01-02T03:04:05Z".into()))
    );
    assert_eq!(one("<value><base64>\naGVs\nbG8=\n</base64></value>"), Ok(XmlValue::Base64(b"hello".to_vec())));
    assert_eq!(one("<value><nil/></value>"), Ok(XmlValue::Nil));
    assert_eq!(
        one("<value><ex:nil xmlns:ex='http://ws.apache.org/xmlrpc/namespaces/extensions'/></value>"),
        Ok(XmlValue::Nil)
    );
    assert_eq!(one("<value><nil></nil></value>"), Ok(XmlValue::Nil));
    assert_eq!(
        one("<value><array><data><value><int>1</int></value> <value>x</value></data></array></value>"),
        Ok(XmlValue::Array(vec![XmlValue::Int(1), XmlValue::String("x".into())]))
    );
    assert_eq!(one("<value><array><data/></array></value>"), Ok(XmlValue::Array(vec![])));
    assert_eq!(
        one("<value><struct>\n<member><name>a</name><value><int>1</int></value></member>\
             <member><value><nil/></value><name>b</name></member>\
             <member><name>a</name><value><int>2</int></value></member></struct></value>"),
        Ok(XmlValue::Struct(BTreeMap::from([("a".into(), XmlValue::Int(2)), ("b".into(), XmlValue::Nil)])))
    );
    assert_eq!(one("<value><struct></struct></value>"), Ok(XmlValue::Struct(BTreeMap::new())));
}

#[test]
fn calls_and_responses_read() {
    let parsed =
        call("<!-- hi --><methodCall>\n <methodName> server_info </methodName>\n</methodCall>\n").expect("parses");
    assert_eq!(parsed, Call { method: "server_info".into(), params: vec![] });
    let parsed = call("<methodCall><methodName>x</methodName><params/></methodCall>").expect("parses");
    assert!(parsed.params.is_empty());
    let response = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n";
    assert_eq!(parse_response(response.as_bytes(), &Limits::DEFAULT), Ok(Response::Value(XmlValue::Nil)));
    let fault = write_fault(&Fault { code: 26, string: "No such method!".into() });
    assert_eq!(
        parse_response(fault.as_bytes(), &Limits::DEFAULT),
        Ok(Response::Fault(Fault { code: 26, string: "No such method!".into() }))
    );
}

#[test]
fn malformed_bodies_get_clear_errors() {
    let mut failures: Vec<String> = Vec::new();
    let message = |body: &str| call(body).expect_err("must fail").to_string();
    soft!(
        failures,
        message("<methodCall><methodName>m</methodName>"),
        "at byte 38: not well-formed XML: the document ends inside <methodCall>"
    );
    soft!(
        failures,
        message("<methodCall><methodName>m</methodName></methodCal>"),
        "at byte 38: not well-formed XML: ill-formed document: expected `</methodCall>`, but `</methodCal>` was found"
    );
    soft!(failures, message("<methodResponse/>"), "at byte 0: expected <methodCall>, found <methodResponse>");
    soft!(
        failures,
        message("<methodCall><methodName> </methodName></methodCall>"),
        "at byte 38: expected a method name, found an empty <methodName>"
    );
    soft!(
        failures,
        message("<methodCall><methodName>m</methodName></methodCall><x/>"),
        "at byte 51: not well-formed XML: a second root element"
    );
    soft!(
        failures,
        message("<methodCall><methodName>m</methodName></methodCall>junk"),
        "at byte 51: not well-formed XML: text outside the root element"
    );
    soft!(
        failures,
        message("<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall/>"),
        "at byte 0: not well-formed XML: a DOCTYPE is not allowed in XML-RPC"
    );
    soft!(
        failures,
        message(&wrap("<param><value>&bogus;</value></param>")),
        "at byte 81: not well-formed XML: unknown entity `&bogus;` (only &lt; &gt; &amp; &apos; &quot; and &#N; are known)"
    );
    let bad = |value: &str| one(value).expect_err("must fail").to_string();
    soft!(
        failures,
        bad("<value><int>1.5</int></value>"),
        "at byte 81: <int> holds \"1.5\", which is not a decimal integer from -9223372036854775808 to 9223372036854775807"
    );
    soft!(
        failures,
        bad("<value><i8>99999999999999999999</i8></value>"),
        "at byte 81: <i8> holds \"99999999999999999999\", which is not a decimal integer from -9223372036854775808 to 9223372036854775807"
    );
    soft!(
        failures,
        bad("<value><boolean>true</boolean></value>"),
        "at byte 81: <boolean> holds \"true\", which is not 0 or 1"
    );
    soft!(
        failures,
        bad("<value><double>nan</double></value>"),
        "at byte 81: <double> holds \"nan\", which is not a finite decimal number"
    );
    soft!(
        failures,
        bad("<value><double>1e999</double></value>"),
        "at byte 81: <double> holds \"1e999\", which is not a finite decimal number"
    );
    soft!(
        failures,
        bad("<value><base64>!!</base64></value>"),
        "at byte 81: <base64> holds \"!!\", which is not standard base64 with padding"
    );
    soft!(
        failures,
        bad("<value><dateTime.iso8601>yesterday</dateTime.iso8601></value>"),
        "at byte 81: <dateTime.iso8601> holds \"yesterday\", which is not a date-time like 20240102T03:04:05 or 2024-01-02T03:04:05"
    );
    soft!(
        failures,
        bad("<value><float2>1</float2></value>"),
        "at byte 81: <float2> is not an XML-RPC type; the types are int, i4, i8, boolean, string, double, dateTime.iso8601, base64, struct, array and nil"
    );
    soft!(
        failures,
        bad("<value>text<int>1</int></value>"),
        "at byte 85: expected a typed value (<int>, <string>, ...) or text, then </value>, found <int>"
    );
    soft!(failures, bad("<value><int>1</int><int>2</int></value>"), "at byte 93: expected </value>, found <int>");
    soft!(failures, bad("<value><int><b/></int></value>"), "at byte 86: expected text or </int>, found <b>");
    soft!(
        failures,
        bad("<value><struct><member><name>a</name></member></struct></value>"),
        "at byte 111: expected <name> and <value> in <member>, found an end tag"
    );
    soft!(failures, bad("<value><array><value/></array></value>"), "at byte 88: expected <data>, found <value>");
    soft!(failures, bad("<value><nil>x</nil></value>"), "at byte 86: expected </nil>, found text \"x\"");
    let not_utf8 = parse_call(b"<methodCall><methodName>\xff</methodName></methodCall>", &Limits::DEFAULT);
    soft!(failures, not_utf8, Err(XmlRpcError::NotUtf8 { position: 24 }));
    let response = |body: &str| parse_response(body.as_bytes(), &Limits::DEFAULT).expect_err("must fail").to_string();
    soft!(
        failures,
        response("<methodResponse><params></params></methodResponse>"),
        "at byte 16: expected exactly one <param> in a response, found 0 params"
    );
    soft!(
        failures,
        response("<methodResponse><fault><value><int>1</int></value></fault></methodResponse>"),
        "at byte 23: expected a fault struct with an int faultCode and a string faultString, found something else"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn limits_bound_size_and_depth() {
    let small = Limits { max_bytes: 64, max_depth: 100 };
    let body = wrap("<param><value>a rather long string to pass the limit</value></param>");
    assert_eq!(parse_call(body.as_bytes(), &small), Err(XmlRpcError::TooLarge { size: body.len(), limit: 64 }));
    let nested = |levels: usize| {
        let mut value = "<value><int>1</int></value>".to_owned();
        for _ in 0..levels {
            value = format!("<value><array><data>{value}</data></array></value>");
        }
        wrap(&format!("<param>{value}</param>"))
    };
    // 3 (call) + 3 per level + 2 (value, int) elements.
    assert!(call(&nested(31)).is_ok());
    let error = call(&nested(32)).expect_err("too deep");
    assert!(matches!(error, XmlRpcError::TooDeep { limit: 100, .. }), "{error}");
    // A million nested arrays fail fast with the depth error, not a stack overflow.
    let deep = "<value><array><data>".repeat(1_000_000);
    let error = call(&wrap(&format!("<param>{deep}"))).expect_err("too deep");
    assert!(matches!(error, XmlRpcError::TooLarge { .. }), "{error}");
    let error =
        parse_call(wrap(&format!("<param>{deep}")).as_bytes(), &Limits { max_bytes: usize::MAX, max_depth: 100 })
            .expect_err("too deep");
    assert!(matches!(error, XmlRpcError::TooDeep { limit: 100, .. }), "{error}");
}

#[test]
fn writes_like_python() {
    let params = join_args(&[json!(7), json!(null)], json!({"full": true}).as_object().expect("object"));
    assert_eq!(
        write_call("topology_info", &params),
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>topology_info</methodName>\n<params>\n<param>\n\
         <value><array><data>\n<value><int>7</int></value>\n<value><nil/></value></data></array></value>\n</param>\n\
         <param>\n<value><struct>\n<member>\n<name>full</name>\n<value><boolean>1</boolean></value>\n</member>\n\
         </struct></value>\n</param>\n</params>\n</methodCall>\n"
    );
    let mut out = String::new();
    write::write_value(&mut out, &XmlValue::Double(1e100));
    write::write_value(&mut out, &XmlValue::Double(1e-7));
    write::write_value(&mut out, &XmlValue::Double(100.0));
    write::write_value(&mut out, &XmlValue::Double(0.1));
    write::write_value(&mut out, &XmlValue::Int(1 << 40));
    write::write_value(&mut out, &XmlValue::String("a<&>\r".into()));
    write::write_value(&mut out, &XmlValue::Base64(vec![0; 60]));
    assert_eq!(
        out,
        "<value><double>1e+100</double></value>\n<value><double>1e-07</double></value>\n\
         <value><double>100.0</double></value>\n<value><double>0.1</double></value>\n\
         <value><i8>1099511627776</i8></value>\n<value><string>a&lt;&amp;&gt;&#13;</string></value>\n\
         <value><base64>\n\
         AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAA\n\
         </base64></value>\n"
    );
}

#[test]
fn responses_and_faults_follow_tomato() {
    assert_eq!(
        write_response(&Ok(json!(null))),
        "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><nil/></value></param>\n</params>\n</methodResponse>\n"
    );
    let error = RpcError::entity_does_not_exist("no topology 7").with_data(json!({"id": 7}));
    let fault = Fault::from_error(&error);
    assert_eq!(fault.code, 999);
    let body: Value = serde_json::from_str(&fault.string).expect("json");
    assert_eq!(
        body,
        json!({"type": "user", "code": "entity_does_not_exist", "message": "no topology 7", "data": {"id": 7}, "module": "backend"})
    );
    assert_eq!(fault.to_error(), error);
    let written = write_response(&Err(error.clone()));
    match parse_response(written.as_bytes(), &Limits::DEFAULT) {
        Ok(Response::Fault(read)) => assert_eq!(read.to_error(), error),
        other => panic!("not a fault: {other:?}"),
    }
    let unknown: RpcError = BACKEND.find("topology_lst").expect_err("unknown").into();
    let fault = Fault::from_error(&unknown);
    assert_eq!(fault, Fault { code: 26, string: "no method `topology_lst`; did you mean `topology_list`?".into() });
    assert_eq!(fault.to_error().kind, kind::UNKNOWN_METHOD);
    let foreign = Fault { code: 1, string: "<class 'TypeError'>".into() };
    assert_eq!(foreign.to_error(), RpcError::internal("<class 'TypeError'>").with_data(json!({"faultCode": 1})));
    let garbled = Fault { code: 999, string: "not json".into() };
    assert_eq!(garbled.to_error().kind, kind::INTERNAL);
    // A result XML cannot carry is a fault, not a body Python rejects.
    let written = write_response(&Ok(json!({"attrs": {"name": "a\u{1}b"}})));
    match parse_response(written.as_bytes(), &Limits::DEFAULT) {
        Ok(Response::Fault(read)) => {
            assert_eq!(
                read.to_error().message,
                "the result holds a character XML cannot carry at result.attrs.name (U+0001)"
            )
        }
        other => panic!("not a fault: {other:?}"),
    }
    let login = RpcError::new(kind::NOT_LOGGED_IN, "log in");
    assert_eq!(unauthorized_status(&login, false), Some(401));
    assert_eq!(unauthorized_status(&login, true), Some(403));
    assert_eq!(unauthorized_status(&RpcError::internal("x"), false), None);
}

#[test]
fn bad_bodies_become_bad_request_errors() {
    let error: RpcError = call("<methodCall>").expect_err("bad").into();
    assert_eq!(error.kind, kind::BAD_REQUEST);
    assert!(error.message.starts_with("XML-RPC body: at byte "), "{}", error.message);
    assert_eq!(error.http_status().as_u16(), 400);
}

#[test]
fn introspection_answers_from_the_table() {
    let names = introspect(&BACKEND, "system.listMethods", &[]).expect("handled").expect("ok");
    let names: Vec<&str> = names.as_array().expect("array").iter().filter_map(Value::as_str).collect();
    assert!(names.contains(&"topology_create") && names.contains(&"system.methodHelp"));
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(names.len(), BACKEND.methods().len() + INTROSPECTION.len());
    assert_eq!(
        introspect(&BACKEND, "_listMethods", &[]).expect("handled").expect("ok").as_array().map(Vec::len),
        Some(names.len())
    );
    let signature = introspect(&BACKEND, "system.methodSignature", &[XmlValue::String("element_create".into())]);
    assert_eq!(signature, Some(Ok(json!("element_create(top, type, parent=None, attrs=None)"))));
    // ToMaTo's client sends [args, kwargs] here too.
    let help = introspect(&BACKEND, "_methodHelp", &join_args(&[json!("topology_set_permission")], &Map::new()));
    let help = help.expect("handled").expect("ok");
    assert_eq!(
        help.as_str().expect("text"),
        "topology_set_permission(id, user, role)\n\nGives a user a role on a topology (`null` takes it away).\n\n\
         Parameters:\n  id: an id (an integer or a non-empty string), required; the topology's id\n  \
         user: a string, required; the account's name\n  \
         role: one of `owner`, `manager`, `user`, `null`, required; the role\n\nNeeds a login.\n"
    );
    let error = introspect(&BACKEND, "system.methodHelp", &[XmlValue::String("element_craete".into())]);
    assert_eq!(
        error.expect("handled").expect_err("unknown").message,
        "no method `element_craete`; did you mean `element_create`?"
    );
    let error = introspect(&BACKEND, "system.methodHelp", &[]).expect("handled").expect_err("missing");
    assert_eq!(error.message, "system.methodHelp: `method` is missing; it must be a string, the name of a method");
    assert_eq!(
        introspect(&BACKEND, "system.methodHelp", &[XmlValue::String("system.listMethods".into())]),
        Some(Ok(json!("system.listMethods()\n\nLists the methods.")))
    );
    assert_eq!(introspect(&BACKEND, "system.multicall", &[]), None);
    assert_eq!(introspect(&BACKEND, "topology_list", &[]), None);
}

/// Strings of characters XML 1.0 can carry.
fn xml_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range(' ', '~'),
            1 => Just('\t'), 1 => Just('\n'), 1 => Just('\r'), 1 => Just('&'), 1 => Just('<'),
            2 => proptest::char::range('\u{a0}', '\u{d7ff}'),
            1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn xml_value() -> impl Strategy<Value = XmlValue> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(XmlValue::Int),
        any::<bool>().prop_map(XmlValue::Bool),
        xml_string().prop_map(XmlValue::String),
        any::<f64>().prop_filter("finite", |d| d.is_finite()).prop_map(XmlValue::Double),
        (1000u32..9999, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..60)
            .prop_map(|(y, mo, d, h, mi, s)| XmlValue::DateTime(format!("{y:04}{mo:02}{d:02}T{h:02}:{mi:02}:{s:02}"))),
        proptest::collection::vec(any::<u8>(), 0..100).prop_map(XmlValue::Base64),
        Just(XmlValue::Nil),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(XmlValue::Array),
            proptest::collection::btree_map(xml_string(), inner, 0..8).prop_map(XmlValue::Struct),
        ]
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_filter("finite", |d| d.is_finite()).prop_map(|d| json!(d)),
        xml_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(xml_string(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn values_round_trip(method in "[a-zA-Z_.][a-zA-Z0-9_.]{0,20}", params in proptest::collection::vec(xml_value(), 0..4)) {
        let body = write_call(&method, &params);
        prop_assert_eq!(parse_call(body.as_bytes(), &Limits::DEFAULT), Ok(Call { method, params: params.clone() }));
        for value in params {
            let body = write_value_response(&value);
            prop_assert_eq!(parse_response(body.as_bytes(), &Limits::DEFAULT), Ok(Response::Value(value)));
        }
    }

    #[test]
    fn json_round_trips(value in json_value()) {
        let body = write_response(&Ok(value.clone()));
        match parse_response(body.as_bytes(), &Limits::DEFAULT) {
            Ok(Response::Value(read)) => prop_assert_eq!(read.to_json(), value),
            other => prop_assert!(false, "not a value: {:?}", other),
        }
    }

    #[test]
    fn faults_round_trip(kind_name in "[a-z_]{1,20}", message in xml_string(), data in json_value()) {
        prop_assume!(kind_name != kind::UNKNOWN_METHOD);
        let error = RpcError::new(kind_name, message).with_data(data);
        let body = write_response(&Err(error.clone()));
        match parse_response(body.as_bytes(), &Limits::DEFAULT) {
            Ok(Response::Fault(fault)) => prop_assert_eq!(fault.to_error(), error),
            other => prop_assert!(false, "not a fault: {:?}", other),
        }
    }

    #[test]
    fn any_text_parses_or_errors(text in "\\PC{0,200}") {
        let _ = parse_call(text.as_bytes(), &Limits::DEFAULT);
        let _ = parse_response(text.as_bytes(), &Limits::DEFAULT);
    }
}
