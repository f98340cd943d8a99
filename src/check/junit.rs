//! JUnit XML for CI systems: one `<testsuite>` per scenario, one
//! `<testcase>` per metric and per expectation; regressions are
//! `<failure>`s, input errors (missing baseline, bad scenario) `<error>`s.

use super::ScenarioCheck;

/// Escapes text for XML 1.0 element content and attribute values (in double
/// or single quotes). Characters XML 1.0 forbids (control characters other
/// than tab, newline and carriage return, U+FFFE, U+FFFF) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            // Kept literally, newlines and tabs in attributes would be
            // normalized to spaces by parsers.
            '\n' => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            '\t' => s.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => s.push('\u{FFFD}'),
            c => s.push(c),
        }
    }
    s
}

struct Case {
    name: String,
    /// (`failure` or `error`, message)
    problem: Option<(&'static str, String)>,
}

fn cases(sc: &ScenarioCheck) -> Vec<Case> {
    let mut out = Vec::new();
    if let Some(e) = &sc.error {
        out.push(Case {
            name: "scenario".into(),
            problem: Some(("error", e.to_string())),
        });
    }
    for m in &sc.metrics {
        out.push(Case {
            name: m.metric.clone(),
            problem: (!m.verdict.passed()).then(|| ("failure", m.message())),
        });
    }
    for e in &sc.expects {
        out.push(Case {
            name: format!("expect {} {}", e.metric, e.bounds),
            problem: (!e.passed).then(|| ("failure", format!("{} [{}]", e.message(), e.location))),
        });
    }
    out
}

/// The whole report as a JUnit XML document.
pub fn render(scenarios: &[ScenarioCheck]) -> String {
    let all: Vec<(&ScenarioCheck, Vec<Case>)> = scenarios.iter().map(|s| (s, cases(s))).collect();
    let count = |kind: &str, cases: &[Case]| {
        cases
            .iter()
            .filter(|c| c.problem.as_ref().is_some_and(|p| p.0 == kind))
            .count()
    };
    let total = |kind: Option<&str>| -> usize {
        all.iter()
            .map(|(_, c)| kind.map_or(c.len(), |k| count(k, c)))
            .sum()
    };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x += &format!(
        "<testsuites name=\"eremu check\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        total(None),
        total(Some("failure")),
        total(Some("error"))
    );
    for (sc, cases) in &all {
        let name = escape(&sc.name);
        x += &format!(
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" file=\"{}\">\n",
            cases.len(),
            count("failure", cases),
            count("error", cases),
            escape(&sc.file.display().to_string())
        );
        for c in cases {
            let open = format!(
                "    <testcase classname=\"{name}\" name=\"{}\"",
                escape(&c.name)
            );
            match &c.problem {
                None => x += &format!("{open}/>\n"),
                Some((kind, msg)) => {
                    let m = escape(msg);
                    x += &format!(
                        "{open}>\n      <{kind} message=\"{m}\">{m}</{kind}>\n    </testcase>\n"
                    );
                }
            }
        }
        x += "  </testsuite>\n";
    }
    x += "</testsuites>\n";
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::compare::{MetricResult, Verdict};
    use crate::check::CheckError;
    use std::path::PathBuf;

    #[test]
    fn escapes_markup_quotes_and_forbidden_characters() {
        assert_eq!(
            escape("a<b>&\"c'\n\u{1}\u{FFFF}é"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}\u{FFFD}é"
        );
        assert_eq!(escape("plain.metric_name-1"), "plain.metric_name-1");
    }

    #[test]
    fn counts_failures_and_errors_per_suite() {
        let metric = |name: &str, verdict| MetricResult {
            metric: name.into(),
            baseline: Some(1.0),
            current: Some(2.0),
            tolerance: "exact".into(),
            verdict,
        };
        let ok = ScenarioCheck {
            file: PathBuf::from("a&b.toml"),
            name: "a<b".into(),
            baseline_file: None,
            warnings: vec![],
            error: None,
            metrics: vec![metric("x", Verdict::Pass), metric("y\"z", Verdict::Fail)],
            expects: vec![],
        };
        let bad = ScenarioCheck {
            file: PathBuf::from("c.toml"),
            name: "c".into(),
            baseline_file: None,
            warnings: vec![],
            error: Some(CheckError::CorruptBaseline {
                path: "c.json".into(),
                message: "EOF <while> parsing".into(),
            }),
            metrics: vec![],
            expects: vec![],
        };
        let x = render(&[ok, bad]);
        assert!(
            x.contains("<testsuites name=\"eremu check\" tests=\"3\" failures=\"1\" errors=\"1\">"),
            "{x}"
        );
        assert!(x.contains("<testsuite name=\"a&lt;b\" tests=\"2\" failures=\"1\" errors=\"0\" file=\"a&amp;b.toml\">"), "{x}");
        assert!(x.contains("name=\"y&quot;z\""), "{x}");
        assert!(
            x.contains(
                "<error message=\"c.json: not a valid eremu baseline: EOF &lt;while&gt; parsing"
            ),
            "{x}"
        );
    }
}
