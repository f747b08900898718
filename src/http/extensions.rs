//! `Sec-WebSocket-Extensions` values (RFC 6455 section 9.1, RFC 7692):
//! `extension *( "," extension )`, `extension = token *( ";" param )`,
//! `param = token [ "=" ( token / quoted-string ) ]`.

/// One extension with its parameters, in wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// Extension name as on the wire.
    pub name: String,
    /// `(name, value)`; quoted values are unescaped. `None`: no `=value`.
    pub params: Vec<(String, Option<String>)>,
}

/// Most extensions (and most parameters per extension) kept from one value.
pub const MAX_EXTENSIONS: usize = 64;

impl Extension {
    /// The value of parameter `name` (case-insensitive): `None` when absent,
    /// `Some(None)` when present without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// As written in a header, parameters normalised: `name; k=v; flag`.
impl std::fmt::Display for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        for (k, v) in &self.params {
            write!(f, "; {k}")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Extensions parsed from one or more header values, with how many were left
/// out because of [`MAX_EXTENSIONS`] (extensions plus parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionList {
    /// The extensions, in wire order.
    pub list: Vec<Extension>,
    /// Extensions and parameters left out because of [`MAX_EXTENSIONS`].
    pub dropped: usize,
}

/// Parses a header value; more than [`MAX_EXTENSIONS`] extensions (or
/// parameters of one extension) is an error. Linear in the value's length.
pub fn parse_extensions(value: &[u8]) -> Result<Vec<Extension>, String> {
    let parsed = parse_extensions_bounded(value, MAX_EXTENSIONS)?;
    if parsed.dropped > 0 {
        return Err(format!(
            "more than {MAX_EXTENSIONS} extensions or parameters ({} left out)",
            parsed.dropped
        ));
    }
    Ok(parsed.list)
}

/// Parses a header value keeping at most `max` extensions and `max`
/// parameters per extension; the rest are still checked, and counted.
pub fn parse_extensions_bounded(value: &[u8], max: usize) -> Result<ExtensionList, String> {
    let mut p = Parser { s: value, i: 0 };
    let mut out = ExtensionList::default();
    loop {
        p.skip_ows();
        match p.peek() {
            None => return Ok(out),
            // Empty list elements are allowed by the `#` rule.
            Some(b',') => {
                p.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = p.token().ok_or_else(|| p.error("an extension name"))?;
        let mut ext = Extension {
            name,
            params: Vec::new(),
        };
        loop {
            p.skip_ows();
            match p.peek() {
                None | Some(b',') => break,
                Some(b';') => p.i += 1,
                Some(_) => return Err(p.error("';' or ','")),
            }
            p.skip_ows();
            let pname = p.token().ok_or_else(|| p.error("a parameter name"))?;
            p.skip_ows();
            let pvalue = if p.peek() == Some(b'=') {
                p.i += 1;
                p.skip_ows();
                let v = if p.peek() == Some(b'"') {
                    p.quoted()?
                } else {
                    p.token()
                };
                Some(v.ok_or_else(|| p.error("a parameter value"))?)
            } else {
                None
            };
            if ext.params.len() < max {
                ext.params.push((pname, pvalue));
            } else {
                out.dropped += 1;
            }
        }
        if out.list.len() < max {
            out.list.push(ext);
        } else {
            out.dropped += 1;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        let t = self.s.get(start..self.i)?;
        // tchar is ASCII, so this is always valid UTF-8.
        (!t.is_empty()).then(|| String::from_utf8_lossy(t).into_owned())
    }

    /// A quoted-string at the cursor, unescaped; `Ok(None)` never happens but
    /// keeps the call site uniform with `token`.
    fn quoted(&mut self) -> Result<Option<String>, String> {
        self.i += 1;
        let mut v = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("a closing '\"'")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Some(String::from_utf8_lossy(&v).into_owned()));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| self.error("an escaped character"))?;
                    v.push(c);
                    self.i += 1;
                }
                Some(c) => {
                    v.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn error(&self, expected: &str) -> String {
        match self.peek() {
            Some(c) => format!(
                "expected {expected} at byte {}, found {:?}",
                self.i,
                char::from(c)
            ),
            None => format!("expected {expected} at end of value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn rfc7692_offers() {
        let v = b"permessage-deflate; client_max_window_bits, permessage-deflate; server_no_context_takeover ;server_max_window_bits=10";
        assert_eq!(
            parse_extensions(v).unwrap(),
            vec![
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext(
                    "permessage-deflate",
                    &[
                        ("server_no_context_takeover", None),
                        ("server_max_window_bits", Some("10"))
                    ]
                ),
            ]
        );
    }

    #[test]
    fn quoted_values_are_unescaped() {
        let v = br#"foo; a="10"; b = "x\"y\\z" , bar"#;
        assert_eq!(
            parse_extensions(v).unwrap(),
            vec![
                ext("foo", &[("a", Some("10")), ("b", Some("x\"y\\z"))]),
                ext("bar", &[])
            ]
        );
    }

    #[test]
    fn empty_and_blank_values() {
        assert_eq!(parse_extensions(b"").unwrap(), vec![]);
        assert_eq!(parse_extensions(b" , ,").unwrap(), vec![]);
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            &b"foo; "[..],
            b"foo bar",
            b"foo; a=",
            b"foo; a=\"open",
            b"=x",
            b"foo;a=\"x\\",
            b"foo; a=b c",
        ] {
            assert!(
                parse_extensions(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn hundred_thousand_commas_are_linear_and_bounded() {
        let commas = vec![b','; 100_000];
        let t = std::time::Instant::now();
        assert_eq!(parse_extensions(&commas).unwrap(), vec![]);
        let many = b"x,".repeat(100_000);
        let r = parse_extensions_bounded(&many, MAX_EXTENSIONS).unwrap();
        assert_eq!(r.list.len(), MAX_EXTENSIONS);
        assert_eq!(r.dropped, 100_000 - MAX_EXTENSIONS);
        assert!(parse_extensions(&many).is_err());
        let params = [&b"x"[..], &b";p".repeat(100_000)].concat();
        let r = parse_extensions_bounded(&params, MAX_EXTENSIONS).unwrap();
        assert_eq!(
            (r.list.len(), r.list[0].params.len(), r.dropped),
            (1, MAX_EXTENSIONS, 100_000 - MAX_EXTENSIONS)
        );
        assert!(t.elapsed().as_secs() < 2, "took {:?}", t.elapsed());
    }
}
