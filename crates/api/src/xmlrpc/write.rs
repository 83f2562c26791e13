//! Writing `methodCall` and `methodResponse` bodies in the layout of
//! Python's `xmlrpc.client.dumps(..., allow_none=True)`, byte for byte for
//! the values Python writes the same way (struct members come in name
//! order here, in insertion order there).

use std::fmt::Write;

use base64::Engine;

use super::Fault;
use super::value::XmlValue;

const HEADER: &str = "<?xml version='1.0'?>\n";

/// Escapes text for element content. Besides Python's `&`, `<` and `>`,
/// `\r` is written as a reference so that a reader's line-end normalization
/// keeps it.
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Writes one `<value>` as Python's `Marshaller` does.
pub(crate) fn write_value(out: &mut String, value: &XmlValue) {
    match value {
        XmlValue::Int(i) => {
            // Python writes `int` for every integer it can send (it refuses
            // wider ones); `i8` is the common extension for the rest.
            let tag = if i32::try_from(*i).is_ok() { "int" } else { "i8" };
            let _ = writeln!(out, "<value><{tag}>{i}</{tag}></value>");
        }
        XmlValue::Bool(b) => {
            let _ = writeln!(out, "<value><boolean>{}</boolean></value>", u8::from(*b));
        }
        XmlValue::String(s) => {
            out.push_str("<value><string>");
            escape(out, s);
            out.push_str("</string></value>\n");
        }
        XmlValue::Double(d) => {
            let _ = writeln!(out, "<value><double>{}</double></value>", python_repr(*d));
        }
        XmlValue::DateTime(s) => {
            out.push_str("<value><dateTime.iso8601>");
            escape(out, s);
            out.push_str("</dateTime.iso8601></value>\n");
        }
        XmlValue::Base64(bytes) => {
            // Python's base64.encodebytes: lines of 76 characters, each
            // ended by a newline.
            out.push_str("<value><base64>\n");
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            for chunk in encoded.as_bytes().chunks(76) {
                out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                out.push('\n');
            }
            out.push_str("</base64></value>\n");
        }
        XmlValue::Struct(members) => {
            out.push_str("<value><struct>\n");
            for (name, member) in members {
                out.push_str("<member>\n<name>");
                escape(out, name);
                out.push_str("</name>\n");
                write_value(out, member);
                out.push_str("</member>\n");
            }
            out.push_str("</struct></value>\n");
        }
        XmlValue::Array(items) => {
            out.push_str("<value><array><data>\n");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array></value>\n");
        }
        // Python writes no newline after nil.
        XmlValue::Nil => out.push_str("<value><nil/></value>"),
    }
}

/// A float as Python's `repr` writes it: the shortest text that reads back
/// exactly, with a fraction (`1.0`) or an exponent of at least two digits
/// and a sign (`1e+100`, `1e-07`). Rust's `{:?}` picks the same digits and
/// the same switch to exponents (below 1e-4, from 1e16) and differs only in
/// the exponent's spelling.
fn python_repr(d: f64) -> String {
    let text = format!("{d:?}");
    let Some((mantissa, exponent)) = text.split_once('e') else { return text };
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

fn write_params(out: &mut String, params: &[XmlValue]) {
    out.push_str("<params>\n");
    for param in params {
        out.push_str("<param>\n");
        write_value(out, param);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n");
}

/// A `methodCall` of `method` with `params`.
pub fn write_call(method: &str, params: &[XmlValue]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("<methodCall>\n<methodName>");
    escape(&mut out, method);
    out.push_str("</methodName>\n");
    write_params(&mut out, params);
    out.push_str("</methodCall>\n");
    out
}

/// A `methodResponse` holding `value`.
pub fn write_value_response(value: &XmlValue) -> String {
    let mut out = String::from(HEADER);
    out.push_str("<methodResponse>\n");
    write_params(&mut out, std::slice::from_ref(value));
    out.push_str("</methodResponse>\n");
    out
}

/// A `methodResponse` holding `fault`.
pub fn write_fault(fault: &Fault) -> String {
    let mut out = String::from(HEADER);
    out.push_str("<methodResponse>\n<fault>\n");
    let members = [
        ("faultCode".to_owned(), XmlValue::Int(fault.code)),
        ("faultString".to_owned(), XmlValue::String(fault.string.clone())),
    ];
    write_value(&mut out, &XmlValue::Struct(members.into_iter().collect()));
    out.push_str("</fault>\n</methodResponse>\n");
    out
}
