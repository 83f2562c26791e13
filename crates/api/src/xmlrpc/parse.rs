//! Reading `methodCall` and `methodResponse` bodies.
//!
//! The body is first turned into a flat list of tokens (element starts and
//! ends, merged text) by quick-xml, checking the size and nesting limits on
//! the way, and then read by a small recursive descent whose depth the
//! nesting limit bounds. Like Python's reader it accepts namespace prefixes
//! on element names (`<ex:nil/>`, `<ex:i8>`), whitespace between elements,
//! comments, and `<member>` with `<value>` before `<name>`; it refuses a
//! DOCTYPE (no entity tricks), unknown elements, text beside elements, and
//! anything after the root element.

use std::collections::BTreeMap;

use base64::Engine;
use quick_xml::Reader;
use quick_xml::events::Event;

use super::value::XmlValue;
use super::{Call, Fault, Limits, Response, XmlRpcError};

#[derive(Debug)]
enum Token {
    /// `<name>` or `<name/>` (then followed by its `End`).
    Start(String),
    End,
    /// Text, references resolved, line ends normalized.
    Text(String),
}

/// A token and the byte offset where it starts.
type Spanned = (usize, Token);

fn tokenize(body: &[u8], limits: &Limits) -> Result<Vec<Spanned>, XmlRpcError> {
    if body.len() > limits.max_bytes {
        return Err(XmlRpcError::TooLarge { size: body.len(), limit: limits.max_bytes });
    }
    let text = std::str::from_utf8(body).map_err(|e| XmlRpcError::NotUtf8 { position: e.valid_up_to() })?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut tokens: Vec<Spanned> = Vec::new();
    // The names of the open elements, for the depth limit and messages.
    let mut open: Vec<String> = Vec::new();
    let mut seen_root = false;
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| XmlRpcError::Syntax {
            position: usize::try_from(reader.error_position()).unwrap_or(usize::MAX),
            message: e.to_string(),
        })?;
        let start = |e: &quick_xml::events::BytesStart<'_>, open: &mut Vec<String>, seen_root: &mut bool| {
            if open.is_empty() && *seen_root {
                return Err(XmlRpcError::Syntax { position, message: "a second root element".into() });
            }
            *seen_root = true;
            if open.len() >= limits.max_depth {
                return Err(XmlRpcError::TooDeep { limit: limits.max_depth, position });
            }
            let name = e.local_name().into_inner().to_owned();
            open.push(e.name().into_inner().to_owned());
            Ok(Token::Start(name))
        };
        let depth = open.len();
        match event {
            Event::Start(e) => {
                let token = start(&e, &mut open, &mut seen_root)?;
                tokens.push((position, token));
            }
            Event::Empty(e) => {
                let token = start(&e, &mut open, &mut seen_root)?;
                tokens.push((position, token));
                open.pop();
                tokens.push((position, Token::End));
            }
            Event::End(_) => {
                open.pop();
                tokens.push((position, Token::End));
            }
            Event::Text(t) => push_text(&mut tokens, position, depth, &t.xml10_content())?,
            Event::CData(c) => push_text(&mut tokens, position, depth, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => {
                            return Err(XmlRpcError::Syntax {
                                position,
                                message: format!(
                                    "unknown entity `&{};` (only &lt; &gt; &amp; &apos; &quot; and &#N; are known)",
                                    &*r
                                ),
                            });
                        }
                    },
                    Err(e) => return Err(XmlRpcError::Syntax { position, message: e.to_string() }),
                };
                push_text(&mut tokens, position, depth, &resolved)?;
            }
            Event::DocType(_) => {
                return Err(XmlRpcError::Syntax { position, message: "a DOCTYPE is not allowed in XML-RPC".into() });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(name) = open.last() {
        return Err(XmlRpcError::Syntax {
            position: body.len(),
            message: format!("the document ends inside <{name}>"),
        });
    }
    Ok(tokens)
}

/// Appends text, merging it with text just before (text and references come
/// as separate events). Text outside the root element must be whitespace.
fn push_text(tokens: &mut Vec<Spanned>, position: usize, depth: usize, text: &str) -> Result<(), XmlRpcError> {
    if depth == 0 {
        if text.chars().all(is_xml_space) {
            return Ok(());
        }
        return Err(XmlRpcError::Syntax { position, message: "text outside the root element".into() });
    }
    if let Some((_, Token::Text(previous))) = tokens.last_mut() {
        previous.push_str(text);
    } else {
        tokens.push((position, Token::Text(text.to_owned())));
    }
    Ok(())
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A cursor over the tokens.
struct Cursor {
    tokens: Vec<Spanned>,
    index: usize,
    end: usize,
}

impl Cursor {
    fn new(tokens: Vec<Spanned>, end: usize) -> Cursor {
        Cursor { tokens, index: 0, end }
    }

    fn position(&self) -> usize {
        self.tokens.get(self.index).map_or(self.end, |(p, _)| *p)
    }

    fn describe_next(&self) -> String {
        match self.tokens.get(self.index) {
            None => "the end of the document".into(),
            Some((_, Token::Start(name))) => format!("<{name}>"),
            Some((_, Token::End)) => "an end tag".into(),
            Some((_, Token::Text(t))) => format!("text {:?}", shorten(t)),
        }
    }

    fn unexpected(&self, expected: &str) -> XmlRpcError {
        XmlRpcError::Unexpected { expected: expected.into(), found: self.describe_next(), position: self.position() }
    }

    /// Skips whitespace-only text.
    fn skip_space(&mut self) {
        while let Some((_, Token::Text(t))) = self.tokens.get(self.index) {
            if !t.chars().all(is_xml_space) {
                break;
            }
            self.index += 1;
        }
    }

    /// The name of the next element start (after whitespace), if the next
    /// token is one.
    fn peek_start(&mut self) -> Option<&str> {
        self.skip_space();
        match self.tokens.get(self.index) {
            Some((_, Token::Start(name))) => Some(name),
            _ => None,
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        matches!(self.tokens.get(self.index), Some((_, Token::End)))
    }

    fn open(&mut self, name: &str) -> Result<(), XmlRpcError> {
        if self.peek_start() == Some(name) {
            self.index += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("<{name}>")))
        }
    }

    fn close(&mut self, name: &str) -> Result<(), XmlRpcError> {
        if self.at_end() {
            self.index += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("</{name}>")))
        }
    }

    /// The text content of an element whose start was consumed, up to and
    /// including its end (empty when there is none).
    fn text_until_end(&mut self, name: &str) -> Result<String, XmlRpcError> {
        let text = match self.tokens.get_mut(self.index) {
            Some((_, Token::Text(t))) => {
                let text = std::mem::take(t);
                self.index += 1;
                text
            }
            _ => String::new(),
        };
        match self.tokens.get(self.index) {
            Some((_, Token::End)) => {
                self.index += 1;
                Ok(text)
            }
            _ => Err(self.unexpected(&format!("text or </{name}>"))),
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 30 { text.to_owned() } else { text.chars().take(30).collect::<String>() + "..." }
}

/// Reads one `<value>...</value>`.
fn value(cursor: &mut Cursor) -> Result<XmlValue, XmlRpcError> {
    cursor.open("value")?;
    let position = cursor.position();
    // Untyped content is a string; typed content is one element with
    // whitespace around it.
    let leading = match cursor.tokens.get_mut(cursor.index) {
        Some((_, Token::Text(t))) => {
            let text = std::mem::take(t);
            cursor.index += 1;
            text
        }
        _ => String::new(),
    };
    match cursor.tokens.get(cursor.index) {
        Some((_, Token::End)) => {
            cursor.index += 1;
            return Ok(XmlValue::String(leading));
        }
        Some((_, Token::Start(_))) if leading.chars().all(is_xml_space) => {}
        _ => return Err(cursor.unexpected("a typed value (<int>, <string>, ...) or text, then </value>")),
    }
    let Some((_, Token::Start(tag))) = cursor.tokens.get(cursor.index) else {
        return Err(cursor.unexpected("a typed value"));
    };
    let tag = tag.clone();
    cursor.index += 1;
    let parsed = match tag.as_str() {
        "struct" => structure(cursor)?,
        "array" => array(cursor)?,
        "nil" => {
            cursor.close("nil")?;
            XmlValue::Nil
        }
        "string" => XmlValue::String(cursor.text_until_end("string")?),
        "int" | "i4" | "i8" | "i1" | "i2" | "bigint" => {
            let text = cursor.text_until_end(&tag)?;
            let trimmed = text.trim_matches(is_xml_space);
            let parsed = trimmed.strip_prefix('+').unwrap_or(trimmed).parse::<i64>();
            XmlValue::Int(parsed.map_err(|_| XmlRpcError::BadValue {
                tag,
                text: shorten(&text),
                expected: "a decimal integer from -9223372036854775808 to 9223372036854775807",
                position,
            })?)
        }
        "boolean" => {
            let text = cursor.text_until_end("boolean")?;
            match text.trim_matches(is_xml_space) {
                "1" => XmlValue::Bool(true),
                "0" => XmlValue::Bool(false),
                _ => return Err(XmlRpcError::BadValue { tag, text: shorten(&text), expected: "0 or 1", position }),
            }
        }
        "double" | "float" => {
            let text = cursor.text_until_end(&tag)?;
            let parsed = text.trim_matches(is_xml_space).parse::<f64>().ok().filter(|d| d.is_finite());
            XmlValue::Double(parsed.ok_or_else(|| XmlRpcError::BadValue {
                tag,
                text: shorten(&text),
                expected: "a finite decimal number",
                position,
            })?)
        }
        "dateTime.iso8601" => {
            let text = cursor.text_until_end(&tag)?;
            let trimmed = text.trim_matches(is_xml_space);
            if !looks_like_datetime(trimmed) {
                return Err(XmlRpcError::BadValue {
                    tag,
                    text: shorten(&text),
                    expected: "a date-time like 20240102T03:04:05 or 2024-01-02T03:04:05",
                    position,
                });
            }
            XmlValue::DateTime(trimmed.to_owned())
        }
        "base64" => {
            let text = cursor.text_until_end("base64")?;
            let compact: String = text.chars().filter(|c| !is_xml_space(*c)).collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map_err(|_| {
                XmlRpcError::BadValue { tag, text: shorten(&text), expected: "standard base64 with padding", position }
            })?;
            XmlValue::Base64(bytes)
        }
        _ => {
            return Err(XmlRpcError::UnknownType { tag, position });
        }
    };
    cursor.close("value")?;
    Ok(parsed)
}

/// Whether `text` starts with a date and a time, in basic
/// (`20240102T03:04:05`) or extended (`2024-01-02T03:04:05`) form; what
/// follows (fractions, a zone) is kept as sent.
fn looks_like_datetime(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some((date, time)) = text.split_once('T') else { return false };
    let date_ok = match date.len() {
        8 => digits(date),
        10 => {
            digits(&date[..4]) && &date[4..5] == "-" && digits(&date[5..7]) && &date[7..8] == "-" && digits(&date[8..])
        }
        _ => false,
    };
    let time_ok = time.len() >= 8
        && time.is_char_boundary(8)
        && digits(&time[..2])
        && &time[2..3] == ":"
        && digits(&time[3..5])
        && &time[5..6] == ":"
        && digits(&time[6..8]);
    date_ok && time_ok
}

/// Reads a struct's members; `<struct>` was consumed.
fn structure(cursor: &mut Cursor) -> Result<XmlValue, XmlRpcError> {
    let mut members = BTreeMap::new();
    while cursor.peek_start() == Some("member") {
        cursor.index += 1;
        let mut name = None;
        let mut member_value = None;
        for _ in 0..2 {
            match cursor.peek_start() {
                Some("name") if name.is_none() => {
                    cursor.index += 1;
                    name = Some(cursor.text_until_end("name")?);
                }
                Some("value") if member_value.is_none() => member_value = Some(value(cursor)?),
                _ => break,
            }
        }
        let (Some(name), Some(member_value)) = (name, member_value) else {
            return Err(cursor.unexpected("<name> and <value> in <member>"));
        };
        cursor.close("member")?;
        members.insert(name, member_value);
    }
    cursor.close("struct")?;
    Ok(XmlValue::Struct(members))
}

/// Reads an array's values; `<array>` was consumed.
fn array(cursor: &mut Cursor) -> Result<XmlValue, XmlRpcError> {
    cursor.open("data")?;
    let mut items = Vec::new();
    while cursor.peek_start() == Some("value") {
        items.push(value(cursor)?);
    }
    cursor.close("data")?;
    cursor.close("array")?;
    Ok(XmlValue::Array(items))
}

/// Reads `<params>` with any number of `<param>`s.
fn params(cursor: &mut Cursor) -> Result<Vec<XmlValue>, XmlRpcError> {
    cursor.open("params")?;
    let mut values = Vec::new();
    while cursor.peek_start() == Some("param") {
        cursor.index += 1;
        values.push(value(cursor)?);
        cursor.close("param")?;
    }
    cursor.close("params")?;
    Ok(values)
}

fn finish(cursor: &mut Cursor) -> Result<(), XmlRpcError> {
    cursor.skip_space();
    if cursor.index < cursor.tokens.len() {
        return Err(cursor.unexpected("the end of the document"));
    }
    Ok(())
}

/// Parses a `methodCall` body within `limits`.
pub fn parse_call(body: &[u8], limits: &Limits) -> Result<Call, XmlRpcError> {
    let mut cursor = Cursor::new(tokenize(body, limits)?, body.len());
    cursor.open("methodCall")?;
    cursor.open("methodName")?;
    let method = cursor.text_until_end("methodName")?;
    let method = method.trim_matches(is_xml_space).to_owned();
    if method.is_empty() {
        return Err(XmlRpcError::Unexpected {
            expected: "a method name".into(),
            found: "an empty <methodName>".into(),
            position: cursor.position(),
        });
    }
    // `<params>` may be left out when there are none.
    let params = if cursor.peek_start() == Some("params") { params(&mut cursor)? } else { Vec::new() };
    cursor.close("methodCall")?;
    finish(&mut cursor)?;
    Ok(Call { method, params })
}

/// Parses a `methodResponse` body (a value or a fault) within `limits`.
pub fn parse_response(body: &[u8], limits: &Limits) -> Result<Response, XmlRpcError> {
    let mut cursor = Cursor::new(tokenize(body, limits)?, body.len());
    cursor.open("methodResponse")?;
    let response = match cursor.peek_start() {
        Some("fault") => {
            cursor.index += 1;
            let position = cursor.position();
            let fault = value(&mut cursor)?;
            cursor.close("fault")?;
            Response::Fault(fault_from_value(fault, position)?)
        }
        _ => {
            let position = cursor.position();
            let mut values = params(&mut cursor)?;
            if values.len() != 1 {
                return Err(XmlRpcError::Unexpected {
                    expected: "exactly one <param> in a response".into(),
                    found: format!("{} params", values.len()),
                    position,
                });
            }
            Response::Value(values.remove(0))
        }
    };
    cursor.close("methodResponse")?;
    finish(&mut cursor)?;
    Ok(response)
}

fn fault_from_value(value: XmlValue, position: usize) -> Result<Fault, XmlRpcError> {
    let bad = || XmlRpcError::Unexpected {
        expected: "a fault struct with an int faultCode and a string faultString".into(),
        found: "something else".into(),
        position,
    };
    let XmlValue::Struct(mut members) = value else { return Err(bad()) };
    match (members.remove("faultCode"), members.remove("faultString")) {
        (Some(XmlValue::Int(code)), Some(XmlValue::String(string))) => Ok(Fault { code, string }),
        _ => Err(bad()),
    }
}
