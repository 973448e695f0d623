//! Tests of the editor analysis. `|` in a test source marks the cursor; it is
//! removed before the analysis sees the text.

use betrace_grammar::ast::Span;

use super::*;
use crate::line_index::{LineCol, LineIndex};

const FILE: &str = r#"attributes {
  span.payment.amount: float
}

let charges = { name = "payment.charge" && span.payment.amount > 1000 }

rule high_value {
  description: "High-value charges need a fraud check"
  severity: critical
  message: "charge of {charge.span.payment.amount} had no check"
  when charge = charges
  always { name = "fraud.check" && status = ok && end <= charge.start }
  never { span.http.response.status_code >= 500 && duration > 2s && contains(name, "x") }
}

rule other {
  severity: low
  when { trace:rootName = "checkout" }
  always charges
}
"#;

/// The source without its `|`, and the cursor's offset.
fn cursor(marked: &str) -> (String, usize) {
    let at = marked.find('|').expect("a `|` marks the cursor");
    (marked.replacen('|', "", 1), at)
}

/// The offset of the `nth` (0-based) occurrence of `needle` in FILE, plus `shift`.
fn at(needle: &str, nth: usize, shift: usize) -> usize {
    FILE.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("{needle} #{nth}")).0 + shift
}

fn text(span: Span) -> &'static str {
    &FILE[span.range()]
}

#[test]
fn hover_on_a_convention_attribute_shows_type_and_brief() {
    let hover = hover(FILE, at("http.response", 0, 3)).expect("hover");
    assert_eq!(text(hover.span), "span.http.response.status_code");
    assert!(hover.markdown.contains("span.http.response.status_code: int"), "{}", hover.markdown);
    assert!(hover.markdown.contains("HTTP"), "the conventions' brief: {}", hover.markdown);
    assert!(hover.markdown.contains("stable"), "{}", hover.markdown);
}

#[test]
fn hover_on_a_declared_attribute_shows_the_declaration() {
    let hover = hover(FILE, at("span.payment.amount >", 0, 6)).expect("hover");
    assert!(hover.markdown.contains("span.payment.amount: float"), "{}", hover.markdown);
    assert!(hover.markdown.contains("line 2"), "{}", hover.markdown);
    // Through a binding, in a message template.
    let hover = super::hover(FILE, at("charge.span.payment", 0, 14)).expect("hover in template");
    assert_eq!(text(hover.span), "span.payment.amount");
}

#[test]
fn hover_on_an_unknown_attribute_says_any() {
    let hover = hover("rule r { severity: low when { span.my.thing = 1 } always { } }", 32).expect("hover");
    assert!(hover.markdown.contains("span.my.thing: any"), "{}", hover.markdown);
}

#[test]
fn hover_on_intrinsics() {
    let hover = hover(FILE, at("duration", 0, 2)).expect("hover");
    assert_eq!(text(hover.span), "duration");
    assert!(hover.markdown.contains("duration: duration"), "{}", hover.markdown);
    assert!(hover.markdown.contains("`span:duration`"), "{}", hover.markdown);
    let scoped = super::hover(FILE, at("trace:rootName", 0, 8)).expect("hover");
    assert_eq!(text(scoped.span), "trace:rootName");
    assert!(scoped.markdown.contains("trace:rootName: string"), "{}", scoped.markdown);
    let member = super::hover(FILE, at("charge.start", 0, 8)).expect("hover on x.start");
    assert_eq!(text(member.span), "start");
    assert!(member.markdown.contains("start: time"));
}

#[test]
fn hover_on_a_function_shows_signature_and_docs() {
    let hover = hover(FILE, at("contains(", 0, 1)).expect("hover");
    assert_eq!(text(hover.span), "contains");
    assert!(hover.markdown.contains("contains("), "{}", hover.markdown);
    assert!(hover.markdown.contains("-> bool"), "{}", hover.markdown);
    assert!(hover.markdown.contains("Examples"), "{}", hover.markdown);
}

#[test]
fn hover_on_bindings_and_lets_shows_their_types() {
    let binding = hover(FILE, at("charge.start", 0, 1)).expect("hover on a binding use");
    assert_eq!(text(binding.span), "charge");
    assert!(binding.markdown.contains("charge: span"), "{}", binding.markdown);
    assert!(binding.markdown.contains("high_value"), "{}", binding.markdown);
    let def = super::hover(FILE, at("charge =", 0, 0)).expect("hover on the binder");
    assert!(def.markdown.contains("charge: span"));
    let let_use = super::hover(FILE, at("= charges\n", 0, 5)).expect("hover on a let use");
    assert!(let_use.markdown.contains("let charges: spanset"), "{}", let_use.markdown);
    let (source, offset) = cursor("let slow = duration > 1s\nrule r { severity: low when { sl|ow } always { } }");
    let boolean = super::hover(&source, offset).expect("hover");
    assert!(boolean.markdown.contains("let slow: bool"), "{}", boolean.markdown);
}

#[test]
fn hover_on_words_fields_and_rules() {
    assert!(hover(FILE, at("= ok", 0, 3)).unwrap().markdown.contains("ok: status"));
    assert!(hover(FILE, at("severity", 0, 2)).unwrap().markdown.contains("critical"));
    let rule = hover(FILE, at("high_value", 0, 2)).unwrap();
    assert!(rule.markdown.contains("rule high_value") && rule.markdown.contains("fraud check"), "{}", rule.markdown);
    assert_eq!(hover(FILE, at("\"payment.charge\"", 0, 3)), None, "nothing inside a plain string");
    assert_eq!(hover("", 0), None);
    assert_eq!(hover("rule", 999), None, "past the end");
}

#[test]
fn definition_and_references_of_a_let() {
    let use_offset = at("always charges", 0, 9);
    let def = definition(FILE, use_offset).expect("definition");
    assert_eq!(def, Span::new(at("charges =", 0, 0), at("charges =", 0, 7)));
    let refs = references(FILE, use_offset);
    let starts: Vec<usize> = refs.iter().map(|s| s.start as usize).collect();
    assert_eq!(starts, [at("charges =", 0, 0), at("= charges\n", 0, 2), at("always charges", 0, 7)]);
    assert!(refs.iter().all(|s| text(*s) == "charges"));
    assert_eq!(references(FILE, def.start as usize), refs, "the same from the definition");
}

#[test]
fn definition_and_references_of_a_binding() {
    let def = definition(FILE, at("charge.start", 0, 2)).expect("definition");
    assert_eq!(def.start as usize, at("charge =", 0, 0));
    let refs = references(FILE, at("charge.start", 0, 2));
    assert_eq!(refs.len(), 3, "binder, template hole, clause: {refs:?}");
    assert!(refs.iter().all(|s| text(*s) == "charge"));
    assert_eq!(refs[0], def);
    // The template's hole is found too.
    assert!(refs.iter().any(|s| s.start as usize == at("charge.span", 0, 0)));
}

#[test]
fn definition_of_a_declared_attribute_is_its_declaration() {
    let def = definition(FILE, at("span.payment.amount >", 0, 8)).expect("definition");
    assert_eq!(text(def), "span.payment.amount: float");
    assert_eq!(definition(FILE, at("http.response", 0, 0)), None, "a convention attribute has no declaration here");
    let refs = references(FILE, at("span.payment.amount >", 0, 8));
    assert_eq!(refs.len(), 3, "declaration, selector, template: {refs:?}");
}

#[test]
fn symbols_one_per_item() {
    let symbols = symbols(FILE);
    let names: Vec<(&str, SymbolKind)> = symbols.iter().map(|s| (s.name.as_str(), s.kind)).collect();
    assert_eq!(
        names,
        [
            ("attributes", SymbolKind::Attributes),
            ("charges", SymbolKind::Let),
            ("high_value", SymbolKind::Rule),
            ("other", SymbolKind::Rule)
        ]
    );
    let rule = &symbols[2];
    assert_eq!(text(rule.selection_span), "high_value");
    assert!(text(rule.span).starts_with("rule high_value {") && text(rule.span).ends_with('}'));
    assert_eq!(rule.detail.as_deref(), Some("critical"));
}

fn complete(source_with_cursor: &str) -> (Vec<String>, Vec<Completion>) {
    let (source, offset) = cursor(source_with_cursor);
    let items = completions(&source, offset);
    (items.iter().map(|c| c.label.clone()).collect(), items)
}

#[test]
fn completion_after_span_dot_offers_convention_attributes() {
    let (labels, items) = complete("rule r { severity: low when { span.http.re| } always { } }");
    assert!(labels.contains(&"http.request.method".to_string()), "{labels:?}");
    assert!(labels.iter().all(|l| l.starts_with("http.")), "namespace filtered: {labels:?}");
    let method = items.iter().find(|c| c.label == "http.request.method").unwrap();
    assert_eq!(method.kind, CompletionKind::Attribute);
    assert_eq!(method.detail.as_deref(), Some("string"));
    // It replaces the key typed so far, `http.re`.
    let (source, offset) = cursor("rule r { severity: low when { span.http.re| } always { } }");
    assert_eq!(&source[method.replace.range()], "http.re");
    assert_eq!(method.replace.end as usize, offset);
    let deprecated = items.iter().find(|c| c.label == "http.method").expect("deprecated ones too");
    assert!(deprecated.deprecated);
}

#[test]
fn completion_of_attributes_after_resource_leading_dot_and_binding() {
    let (labels, _) = complete("rule r { severity: low when { resource.| } always { } }");
    assert!(labels.contains(&"service.name".to_string()));
    let (labels, _) = complete("rule r { severity: low when { .serv| } always { } }");
    assert!(labels.contains(&"service.name".to_string()));
    let (labels, _) = complete("rule r { severity: low when x = { } always { x.span.| } }");
    assert!(labels.contains(&"http.route".to_string()));
    let (labels, _) = complete("attributes { span.pay.x: int }\nrule r { severity: low when { span.pa| } always { } }");
    assert!(labels.contains(&"pay.x".to_string()), "declared attributes: {labels:?}");
}

#[test]
fn completion_after_a_binding_or_parent_offers_span_fields() {
    let (labels, _) = complete("rule r { severity: low when x = { } always { x.| } }");
    for expected in ["name", "duration", "parent", "span", "resource"] {
        assert!(labels.contains(&expected.to_string()), "{expected}: {labels:?}");
    }
    assert!(!labels.iter().any(|l| l.contains(':')), "scoped names are not members: {labels:?}");
    let (labels, _) = complete("rule r { severity: low when { parent.| } always { } }");
    assert!(labels.contains(&"name".to_string()));
    let (labels, _) = complete("rule r { severity: low when { nobody.| } always { } }");
    assert!(labels.is_empty(), "{labels:?}");
}

#[test]
fn completion_in_a_selector_offers_intrinsics_lets_bindings_functions() {
    let (labels, items) =
        complete("let fast = { duration < 1s }\nrule r { severity: low when x = { } always { du| } }");
    for expected in
        ["duration", "span:duration", "trace:rootName", "fast", "x", "contains", "parent", "span", "ok", "server"]
    {
        assert!(labels.contains(&expected.to_string()), "{expected}: {labels:?}");
    }
    let contains = items.iter().find(|c| c.label == "contains").unwrap();
    assert_eq!(contains.kind, CompletionKind::Function);
    assert!(contains.detail.as_deref().unwrap().starts_with("contains("), "the signature: {:?}", contains.detail);
    let duration = items.iter().find(|c| c.label == "duration").unwrap();
    assert_eq!(duration.detail.as_deref(), Some("duration"));
    let (source, offset) = cursor("let fast = { duration < 1s }\nrule r { severity: low when x = { } always { du| } }");
    assert_eq!(&source[duration.replace.range()], "du");
    assert_eq!(duration.replace.end as usize, offset);
}

#[test]
fn completion_outside_selectors_has_no_span_intrinsics() {
    let (labels, _) = complete("rule r { severity: low when { } always count({ }) > 1 && | }");
    assert!(labels.contains(&"trace:duration".to_string()));
    assert!(labels.contains(&"count".to_string()));
    assert!(!labels.contains(&"duration".to_string()), "{labels:?}");
}

#[test]
fn completion_of_keywords_fields_and_severities() {
    let (labels, _) = complete("|");
    assert_eq!(labels, ["rule", "let", "attributes"]);
    let (labels, _) = complete("rule r { severity: low when { } always { } }\n|");
    assert_eq!(labels, ["rule", "let", "attributes"]);
    let (labels, _) = complete("rule r {\n  |\n}");
    for expected in ["description", "severity", "message", "when", "always", "never"] {
        assert!(labels.contains(&expected.to_string()), "{expected}: {labels:?}");
    }
    let (labels, _) = complete("rule r {\n  severity: |\n}");
    assert_eq!(labels, ["info", "low", "medium", "high", "critical"]);
    let (labels, _) = complete("rule r {\n  severity: cr|\n}");
    assert_eq!(labels, ["info", "low", "medium", "high", "critical"]);
    let (labels, _) = complete("attributes {\n  span.x: |\n}");
    assert!(labels.contains(&"float".to_string()));
    let (labels, _) = complete("attributes {\n  |\n}");
    assert!(labels.contains(&"span".to_string()));
}

#[test]
fn completion_of_scoped_intrinsics() {
    let (labels, items) = complete("rule r { severity: low when { trace:ro| } always { } }");
    assert!(
        labels.contains(&"trace:rootName".to_string()) && labels.iter().all(|l| l.starts_with("trace:")),
        "{labels:?}"
    );
    let (source, _) = cursor("rule r { severity: low when { trace:ro| } always { } }");
    assert_eq!(&source[items[0].replace.range()], "trace:ro", "replaces the scope too");
    let (labels, _) = complete("rule r { severity: low when { span:| } always { } }");
    assert!(
        labels.contains(&"span:duration".to_string()) && labels.contains(&"span:parentID".to_string()),
        "{labels:?}"
    );
    let (labels, _) = complete("rule r { severity: low when { } always trace:| }");
    assert!(labels.contains(&"trace:duration".to_string()) && labels.len() == 7, "{labels:?}");
}

#[test]
fn no_completion_in_comments_and_plain_strings() {
    assert!(complete("// a comment span.|").0.is_empty());
    assert!(complete("rule r { severity: low when { name = \"span.|\" } always { } }").0.is_empty());
    assert!(complete("/* open |").0.is_empty());
    // A message template's hole is an expression, with the binding in scope.
    let (labels, _) = complete("rule r { severity: low message: \"took {x.|}\" when x = { } always { } }");
    assert!(labels.is_empty() || labels.contains(&"duration".to_string()), "{labels:?}");
    let (labels, _) = complete("rule r { severity: low when x = { } always { } message: \"took {x.dur|\" }");
    assert!(labels.contains(&"duration".to_string()), "{labels:?}");
}

#[test]
fn analysis_is_total_on_odd_offsets_and_text() {
    let text = "rule é { severity: low when x = { name = \"😀\" } always { x.| } }";
    let (source, offset) = cursor(text);
    for o in 0..=source.len() + 3 {
        let _ = hover(&source, o);
        let _ = completions(&source, o);
        let _ = definition(&source, o);
        let _ = references(&source, o);
    }
    assert!(completions(&source, offset).iter().any(|c| c.label == "name"));
    for broken in ["rule", "rule r {", "let", "let x =", "attributes {", "rule r { when x = ", "{{{{", "\"", "`"] {
        for o in 0..=broken.len() {
            let _ = completions(broken, o);
            let _ = hover(broken, o);
            let _ = symbols(broken);
        }
    }
}

/// Positions as editors send them (UTF-16 columns) map to the right names
/// after multi-byte text: `é` is one UTF-16 unit and two bytes, `😀` two units
/// and four bytes.
#[test]
fn utf16_positions_after_multibyte_text() {
    let source = "let é = 1\nrule r { description: \"😀é\" severity: low when x = { name = \"😀\" } always { x.duration > 1s } }\n";
    let index = LineIndex::new(source);
    // The editor puts the cursor on `duration` in `x.duration`: count UTF-16 units on line 1.
    let line1 = source.lines().nth(1).unwrap();
    let byte_col = line1.find("x.duration").unwrap() + 4;
    let utf16_col = line1[..byte_col].encode_utf16().count() as u32;
    assert_eq!(utf16_col as usize, byte_col - 2 - 1 - 2, "😀 twice (2 bytes fewer each) and é once");
    let offset = index.offset_utf16(source, LineCol { line: 1, col: utf16_col }) as usize;
    let hover = hover(source, offset).expect("hover");
    assert_eq!(&source[hover.span.range()], "duration");
    // And back: the hover's range in UTF-16 columns.
    let start = index.line_col_utf16(source, hover.span.start);
    assert_eq!(start, LineCol { line: 1, col: utf16_col - 2 });
    let def = definition(source, offset - 4).expect("binding");
    assert_eq!(
        index.line_col_utf16(source, def.start).col,
        line1[..line1.find("x =").unwrap()].encode_utf16().count() as u32
    );
}

#[test]
fn highlights_classify_tokens_by_what_names_resolve_to() {
    let source = "// top\nlet fast = { duration < 1s }\nrule r { severity: low when x = fast always { x.span.http.route = `/a` /* c */ && contains(name, \"é\") } }";
    let kinds: Vec<(&str, HighlightKind, bool)> =
        highlights(source).iter().map(|h| (&source[h.span.range()], h.kind, h.definition)).collect();
    let kind_of = |text: &str| kinds.iter().find(|(t, _, _)| *t == text).map(|(_, k, d)| (*k, *d));
    assert_eq!(kind_of("// top"), Some((HighlightKind::Comment, false)));
    assert_eq!(kind_of("/* c */"), Some((HighlightKind::Comment, false)));
    assert_eq!(kind_of("let"), Some((HighlightKind::Keyword, false)));
    assert_eq!(kind_of("fast"), Some((HighlightKind::Variable, true)));
    assert_eq!(kind_of("duration"), Some((HighlightKind::Intrinsic, false)));
    assert_eq!(kind_of("1s"), Some((HighlightKind::Number, false)));
    assert_eq!(kind_of("r"), Some((HighlightKind::Rule, true)));
    assert_eq!(kind_of("severity"), Some((HighlightKind::Property, false)));
    assert_eq!(kind_of("low"), Some((HighlightKind::EnumMember, false)));
    assert_eq!(kind_of("x"), Some((HighlightKind::Parameter, true)), "the binder: just its name");
    assert_eq!(kind_of("span"), Some((HighlightKind::Namespace, false)));
    assert_eq!(kind_of("route"), Some((HighlightKind::Property, false)));
    assert_eq!(kind_of("`/a`"), Some((HighlightKind::String, false)));
    assert_eq!(kind_of("contains"), Some((HighlightKind::Function, false)));
    assert_eq!(kind_of("\"é\""), Some((HighlightKind::String, false)));
    let uses: Vec<_> = kinds.iter().filter(|(t, _, _)| *t == "fast").collect();
    assert_eq!(uses.len(), 2);
    assert_eq!(*uses[1], ("fast", HighlightKind::Variable, false));
    // In order, never overlapping.
    let spans: Vec<Span> = highlights(source).iter().map(|h| h.span).collect();
    assert!(spans.windows(2).all(|w| w[0].end <= w[1].start), "{spans:?}");
}
