//! Turning a byte span of a scenario file into what a user needs to fix it:
//! line, column and the dotted key (`flows[1].rate`) the span belongs to.

use std::ops::Range;

use toml_edit::{ImDocument, InlineTable, Item, Table, Value};

/// Where in a file something is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted key path, or empty when the span is outside every key.
    pub key: String,
}

pub fn locate(source: &str, span: Option<Range<usize>>) -> Location {
    let Some(span) = span else {
        return Location {
            line: 1,
            column: 1,
            key: String::new(),
        };
    };
    let pos = span.start.min(source.len());
    let before = &source[..floor_char_boundary(source, pos)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = ImDocument::parse(source)
        .ok()
        .and_then(|doc| {
            let mut best = None;
            walk_table(doc.as_table(), "", pos, &mut best);
            best
        })
        .unwrap_or_default();
    Location { line, column, key }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn contains(span: Option<Range<usize>>, pos: usize) -> bool {
    span.is_some_and(|r| r.start <= pos && pos < r.end.max(r.start + 1))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Records the deepest key whose key or value span holds `pos`.
fn walk_table(t: &Table, prefix: &str, pos: usize, best: &mut Option<String>) {
    for (k, item) in t.iter() {
        let path = join(prefix, k);
        let key_span = t.key(k).and_then(|k| k.span());
        if contains(key_span, pos) || contains(item.span(), pos) {
            *best = Some(path.clone());
        }
        match item {
            Item::Table(sub) => walk_table(sub, &path, pos, best),
            Item::ArrayOfTables(arr) => {
                for (i, sub) in arr.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if contains(sub.span(), pos) {
                        *best = Some(p.clone());
                    }
                    walk_table(sub, &p, pos, best);
                }
            }
            Item::Value(v) => walk_value(v, &path, pos, best),
            Item::None => {}
        }
    }
}

fn walk_value(v: &Value, path: &str, pos: usize, best: &mut Option<String>) {
    match v {
        Value::InlineTable(t) => walk_inline(t, path, pos, best),
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if contains(e.span(), pos) {
                    *best = Some(p.clone());
                }
                walk_value(e, &p, pos, best);
            }
        }
        _ => {}
    }
}

fn walk_inline(t: &InlineTable, prefix: &str, pos: usize, best: &mut Option<String>) {
    for (k, v) in t.iter() {
        let path = join(prefix, k);
        if contains(t.key(k).and_then(|k| k.span()), pos) || contains(v.span(), pos) {
            *best = Some(path.clone());
        }
        walk_value(v, &path, pos, best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_line_column_and_key() {
        let src = "name = \"x\"\n[circuit]\nbandwidth = \"1Gbps\"\n\n[[flows]]\nname = \"a\"\n[[flows]]\nrate = \"5 parsecs\"\n";
        let pos = src.find("\"5 parsecs").unwrap();
        let loc = locate(src, Some(pos..pos + 11));
        assert_eq!(
            loc,
            Location {
                line: 8,
                column: 8,
                key: "flows[1].rate".into()
            }
        );
        let pos = src.find("\"1Gbps").unwrap();
        assert_eq!(locate(src, Some(pos..pos + 7)).key, "circuit.bandwidth");
    }
}
