//! `{...}` expressions in group templates: `h{i}`, `10.0.{i/250}.{i%250+1}/16`.
//!
//! The only variable is `i`, the member's number; operators are `+ - * / %`
//! with the usual precedence, parentheses and unary minus, on whole numbers.
//! `{{` and `}}` stand for literal braces.

/// Substitutes every `{expr}` in `text` with its value for `i`.
pub fn substitute(text: &str, i: i64) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("unmatched `}}` in `{text}`; write `}}}}` for a literal brace"));
        }
        let Some(end) = tail.find('}') else {
            return Err(format!("unclosed `{{` in `{text}`"));
        };
        let value = eval(&tail[1..end], i)?;
        out.push_str(&value.to_string());
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// If `text` is exactly one `{expr}`, its value as a number.
pub fn whole_number(text: &str, i: i64) -> Option<Result<i64, String>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    (!inner.contains(['{', '}'])).then(|| eval(inner, i))
}

/// Evaluates one expression for `i`.
pub fn eval(expr: &str, i: i64) -> Result<i64, String> {
    let tokens = tokenize(expr)?;
    let mut parser = Parser { tokens: &tokens, pos: 0, i, expr };
    let v = parser.sum()?;
    if parser.pos != tokens.len() {
        return Err(format!("unexpected `{}` in `{{{expr}}}`", tokens[parser.pos]));
    }
    Ok(v)
}

fn tokenize(expr: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            tokens.push(n);
        } else if "+-*/%()i".contains(c) {
            tokens.push(c.to_string());
            chars.next();
        } else {
            return Err(format!(
                "`{c}` is not allowed in `{{{expr}}}`; use i, whole numbers, + - * / % and parentheses"
            ));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
    i: i64,
    expr: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn sum(&mut self) -> Result<i64, String> {
        let mut v = self.product()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            let plus = op == "+";
            self.pos += 1;
            let r = self.product()?;
            v = if plus { v.checked_add(r) } else { v.checked_sub(r) }.ok_or_else(|| self.overflow())?;
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<i64, String> {
        let mut v = self.factor()?;
        while let Some(op @ ("*" | "/" | "%")) = self.peek() {
            let op = op.to_string();
            self.pos += 1;
            let r = self.factor()?;
            v = match op.as_str() {
                "*" => v.checked_mul(r).ok_or_else(|| self.overflow())?,
                _ if r == 0 => return Err(format!("division by zero in `{{{}}}`", self.expr)),
                "/" => v.div_euclid(r),
                _ => v.rem_euclid(r),
            };
        }
        Ok(v)
    }

    fn factor(&mut self) -> Result<i64, String> {
        let tok = self.peek().map(str::to_string);
        self.pos += 1;
        match tok.as_deref() {
            Some("i") => Ok(self.i),
            Some("-") => Ok(-self.factor()?),
            Some("(") => {
                let v = self.sum()?;
                if self.peek() != Some(")") {
                    return Err(format!("missing `)` in `{{{}}}`", self.expr));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(n) if n.chars().all(|c| c.is_ascii_digit()) => n.parse().map_err(|_| self.overflow()),
            Some(other) => Err(format!("unexpected `{other}` in `{{{}}}`", self.expr)),
            None => Err(format!("`{{{}}}` ends too early", self.expr)),
        }
    }

    fn overflow(&self) -> String {
        format!("`{{{}}}` overflows", self.expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_with_precedence() {
        assert_eq!(substitute("h{i}", 7).as_deref(), Ok("h7"));
        assert_eq!(substitute("10.0.{i/250}.{i%250+1}/16", 251).as_deref(), Ok("10.0.1.2/16"));
        assert_eq!(substitute("{2+3*i}", 2).as_deref(), Ok("8"));
        assert_eq!(substitute("{(2+3)*i}", 2).as_deref(), Ok("10"));
        assert_eq!(substitute("{{literal}} {-i}", 4).as_deref(), Ok("{literal} -4"));
        assert_eq!(whole_number("{i*10}", 3), Some(Ok(30)));
        assert_eq!(whole_number("x{i}", 3), None);
    }

    #[test]
    fn reports_mistakes() {
        assert!(substitute("h{j}", 1).expect_err("bad var").contains("not allowed"));
        assert!(substitute("h{i/0}", 1).expect_err("div0").contains("division by zero"));
        assert!(substitute("h{i", 1).expect_err("unclosed").contains("unclosed"));
        assert!(substitute("h{(i}", 1).expect_err("paren").contains("missing `)`"));
    }
}
