//! A small XML document tree for topdl: elements with their line, XML
//! attributes, child elements and text, read with quick-xml's streaming
//! reader and written back with escaping.
//!
//! topdl keeps all data in child elements and text, so this tree is all the
//! typed layer (`topdl.rs`) needs, and it keeps elements the typed layer does
//! not know so they can be written back unchanged. Reading is bounded: a
//! document nested deeper than [`MAX_DEPTH`] is refused, so nothing later
//! recurses without limit.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// One XML element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The element's name as written (with any prefix).
    pub name: String,
    /// XML attributes in document order.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Node>,
    /// The element's text (all text pieces joined, entities resolved).
    pub text: String,
    /// The line the element starts on (0 for built nodes); not compared.
    pub line: Line,
}

/// A source line (1-based; 0 when not read from a file). Lines never make
/// two documents differ: every line equals every other.
#[derive(Clone, Copy, Debug, Default)]
pub struct Line(pub usize);

impl PartialEq for Line {
    fn eq(&self, _: &Line) -> bool {
        true
    }
}

impl Eq for Line {}

impl Node {
    /// An element with a name only (line 0: not read from a file).
    pub fn new(name: impl Into<String>) -> Node {
        Node { name: name.into(), attrs: Vec::new(), children: Vec::new(), text: String::new(), line: Line(0) }
    }

    /// An element holding text.
    pub fn leaf(name: impl Into<String>, text: impl Into<String>) -> Node {
        Node { text: text.into(), ..Node::new(name) }
    }

    /// Adds a child and returns `self`.
    pub fn with(mut self, child: Node) -> Node {
        self.children.push(child);
        self
    }

    /// The trimmed text.
    pub fn value(&self) -> &str {
        self.text.trim()
    }
}

/// A syntax error with the line it was found on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn line_at(text: &str, offset: u64) -> usize {
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
    1 + text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count()
}

/// Lines of increasing offsets, counted once (the reader only moves forward).
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, offset: u64) -> usize {
        let end = usize::try_from(offset).unwrap_or(usize::MAX).min(self.text.len());
        if end >= self.offset {
            self.line += self.text[self.offset..end].iter().filter(|b| **b == b'\n').count();
            self.offset = end;
        }
        self.line
    }
}

/// Parses a document and returns its root element.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let err = |line: usize, message: String| SyntaxError { line, message };
    let mut lines = Lines { text: text.as_bytes(), offset: 0, line: 1 };
    loop {
        let start = reader.buffer_position();
        let line = lines.at(start);
        let event = reader.read_event().map_err(|e| err(line_at(text, reader.error_position()), e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(err(line, "a second root element".into()));
            }
            Event::Start(tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(line, format!("elements nested deeper than {MAX_DEPTH} levels")));
                }
                stack.push(start_node(&tag, line)?);
            }
            Event::Empty(tag) => {
                let node = start_node(&tag, line)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let mut node = stack.pop().expect("the reader checks that end tags match start tags");
                // Around child elements, white space is layout, not text.
                if !node.children.is_empty() {
                    node.text = node.text.trim().to_string();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => match stack.last_mut() {
                Some(node) => node.text.push_str(&t.xml10_content()),
                None if t.trim().is_empty() => {}
                None => return Err(err(line, "text outside the root element".into())),
            },
            Event::CData(t) => match stack.last_mut() {
                Some(node) => node.text.push_str(&t.xml10_content()),
                None => return Err(err(line, "CDATA outside the root element".into())),
            },
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.to_string(),
                        None => return Err(err(line, format!("unknown entity `&{};`", &*r))),
                    },
                    Err(e) => return Err(err(line, e.to_string())),
                };
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&resolved),
                    None => return Err(err(line, "an entity outside the root element".into())),
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(err(
            line_at(text, text.len() as u64),
            format!("`<{}>` (line {}) is not closed", open.name, open.line.0),
        ));
    }
    root.ok_or_else(|| err(1, "no root element".into()))
}

fn start_node(tag: &quick_xml::events::BytesStart<'_>, line: usize) -> Result<Node, SyntaxError> {
    let name = AsRef::<str>::as_ref(&tag.name()).to_string();
    let mut node = Node::new(name);
    node.line = Line(line);
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| SyntaxError { line, message: e.to_string() })?;
        let key = AsRef::<str>::as_ref(&attr.key).to_string();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| SyntaxError { line, message: e.to_string() })?;
        node.attrs.push((key, value.into_owned()));
    }
    Ok(node)
}

/// Escapes text for element content: markup characters, and carriage
/// returns (which a reader would turn into line feeds).
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).replace('\r', "&#13;")
}

/// Escapes an attribute value: as [`escape`], plus tabs and line feeds
/// (which a reader would turn into spaces).
pub fn escape_attr(text: &str) -> String {
    escape(text).replace('\t', "&#9;").replace('\n', "&#10;")
}

/// Writes `node` indented by `depth` levels of two spaces; elements with
/// children put each child on its own line, others are written on one line.
pub fn write_node(out: &mut String, node: &Node, depth: usize) {
    let pad = "  ".repeat(depth);
    out.push_str(&pad);
    out.push('<');
    out.push_str(&node.name);
    for (k, v) in &node.attrs {
        out.push_str(&format!(" {k}=\"{}\"", escape_attr(v)));
    }
    if node.children.is_empty() {
        if node.text.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(&format!(">{}</{}>\n", escape(&node.text), node.name));
        }
        return;
    }
    out.push_str(">\n");
    if !node.value().is_empty() {
        out.push_str(&format!("{pad}  {}\n", escape(node.value())));
    }
    for child in &node.children {
        write_node(out, child, depth + 1);
    }
    out.push_str(&format!("{pad}</{}>\n", node.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_elements_with_lines_entities_and_attributes() {
        let root =
            parse("<?xml version=\"1.0\"?>\n<a>\n  <b x=\"1&amp;2\">t &lt; u&#65;</b>\n  <c/>\n</a>\n").expect("valid");
        assert_eq!(root.name, "a");
        assert_eq!(root.children[0].attrs, vec![("x".to_string(), "1&2".to_string())]);
        assert_eq!(root.children[0].value(), "t < uA");
        assert_eq!(root.children[0].line.0, 3);
        assert_eq!(root.children[1].line.0, 4);
        let mut out = String::new();
        write_node(&mut out, &root, 0);
        assert_eq!(parse(&out).expect("own output").children[0].value(), "t < uA");
    }

    #[test]
    fn odd_text_survives_writing() {
        let root = parse("<a x=\"t&#9;a&#10;b&#13;\">\n  mixed <b>c&#13;d</b>\n</a>").expect("valid");
        assert_eq!(root.attrs[0].1, "t\ta\nb\r");
        assert_eq!(root.text, "mixed");
        assert_eq!(root.children[0].text, "c\rd");
        let mut out = String::new();
        write_node(&mut out, &root, 0);
        assert_eq!(parse(&out).expect("own output"), root);
    }

    #[test]
    fn refuses_broken_documents_with_the_line() {
        let e = parse("<a>\n<b>\n</c>\n</a>").expect_err("mismatched");
        assert_eq!(e.line, 3, "{e:?}");
        assert!(parse("<a>").expect_err("unclosed").message.contains("not closed"));
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a>&bogus;</a>").expect_err("entity").message.contains("unknown entity"));
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).expect_err("deep").message.contains("deeper"));
    }
}
