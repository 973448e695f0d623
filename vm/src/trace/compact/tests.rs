//! Tests of the compact trace notation: every field, ids and nesting, and
//! the error messages (with their lines and columns).

use super::*;

fn one(text: &str) -> SpanRecord {
    let spans = parse_spans(text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(spans.len(), 1);
    spans.into_iter().next().unwrap()
}

fn fails(text: &str) -> CompactError {
    match parse(text) {
        Ok(trace) => panic!("parsed: {trace:?}"),
        Err(errors) => errors.into_iter().next().unwrap(),
    }
}

fn id(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

#[test]
fn the_example_line_by_line() {
    let trace = parse(
        r#"
checkout: POST /checkout  server  0ms+120ms  http.route="/api/v1/admin/users" http.response.status_code=500 status=error message="boom"
  auth: auth.check  internal  5ms+10ms  status=ok
  payments: payment.charge  client  30ms+40ms  payment.amount=1500.0 #charge
"#,
    )
    .unwrap();
    let [root, auth, charge] = &trace.spans[..] else { panic!("{trace:?}") };
    assert_eq!(root.name, "POST /checkout");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!((root.start, root.end), (EPOCH, EPOCH + 120_000_000));
    assert_eq!(root.status, Status::Error);
    assert_eq!(root.status_message, "boom");
    assert_eq!(
        root.attrs,
        [
            (Text::from("http.route"), RecordValue::Str("/api/v1/admin/users".into())),
            (Text::from("http.response.status_code"), RecordValue::Int(500)),
        ]
    );
    assert_eq!(*root.resource, [(Text::from("service.name"), RecordValue::Str("checkout".into()))]);
    assert_eq!((root.span_id, root.parent_id, root.trace_id), (id(1), [0; 8], TRACE_ID));
    assert_eq!((auth.span_id, auth.parent_id, auth.kind, auth.status), (id(2), id(1), SpanKind::Internal, Status::Ok));
    assert_eq!(charge.parent_id, id(1));
    assert_eq!(charge.attrs, [(Text::from("payment.amount"), RecordValue::Float(1500.0))]);
    assert_eq!((charge.start, charge.end), (EPOCH + 30_000_000, EPOCH + 70_000_000));
    assert_eq!(trace.labels.get("charge"), Some(&2));
    assert_eq!(trace.lines, [2, 3, 4]);
    assert_eq!(trace.label_of(2), Some("charge"));
}

#[test]
fn indentation_picks_the_nearest_line_above_with_less() {
    let spans = parse_spans("a\n  b\n    c\n  d\n      e\n f\ng\n").unwrap();
    let parents: Vec<[u8; 8]> = spans.iter().map(|s| s.parent_id).collect();
    assert_eq!(parents, [[0; 8], id(1), id(2), id(1), id(4), id(1), [0; 8]]);
}

#[test]
fn names_quotes_and_defaults() {
    let span = one(r#"shop: "GET /api server" 1s..1.5s"#);
    assert_eq!((span.name.as_str(), span.kind), ("GET /api server", SpanKind::Unspecified));
    assert_eq!((span.start, span.end), (EPOCH + 1_000_000_000, EPOCH + 1_500_000_000));
    let span = one("db.query");
    assert_eq!((span.start, span.end, span.status), (EPOCH, EPOCH + 1_000_000, Status::Unset));
    assert!(span.resource.is_empty(), "no service, no service.name");
    let span = one(r#""my svc": `raw \d name`"#);
    assert_eq!(span.name, r"raw \d name");
    assert_eq!(*span.resource, [(Text::from("service.name"), RecordValue::Str("my svc".into()))]);
    let spans = parse_spans("a\nb\nc 10ms+1ms\n").unwrap();
    let starts: Vec<i64> = spans.iter().map(|s| s.start - EPOCH).collect();
    assert_eq!(starts, [0, 1_000_000, 10_000_000], "unspecified times follow line order, 1ms apart");
}

#[test]
fn values_use_the_rule_language_literals() {
    let span =
        one(r#"x s="a \"b\"\tc" i=1_000 n=-5 f=2.5e3 g=-0.5 t=true u=false l=[1, 2] e=[] m=["a b", "c"] r=`\d`"#);
    let value = |key: &str| span.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(value("s"), RecordValue::Str("a \"b\"\tc".into()));
    assert_eq!(value("i"), RecordValue::Int(1000));
    assert_eq!(value("n"), RecordValue::Int(-5));
    assert_eq!(value("f"), RecordValue::Float(2500.0));
    assert_eq!(value("g"), RecordValue::Float(-0.5));
    assert_eq!(value("t"), RecordValue::Bool(true));
    assert_eq!(value("u"), RecordValue::Bool(false));
    assert_eq!(value("l"), RecordValue::Array(vec![RecordValue::Int(1), RecordValue::Int(2)]));
    assert_eq!(value("e"), RecordValue::Array(vec![]));
    assert_eq!(value("m"), RecordValue::Array(vec![RecordValue::Str("a b".into()), RecordValue::Str("c".into())]));
    assert_eq!(value("r"), RecordValue::Str(r"\d".into()));
}

#[test]
fn scoped_and_reserved_keys() {
    let span =
        one(r#"svc: op span.a=1 resource.r="x" event.e=2 link.l=3 instrumentation.i=4 "message"="attr" "status"=5
            instrumentation:name="lib" instrumentation:version="1.2" id=42"#
            .replace('\n', " ")
            .as_str());
    assert_eq!(
        span.attrs,
        [
            (Text::from("a"), RecordValue::Int(1)),
            ("message".into(), RecordValue::Str("attr".into())),
            ("status".into(), RecordValue::Int(5))
        ]
    );
    assert_eq!(
        *span.resource,
        [(Text::from("service.name"), RecordValue::Str("svc".into())), ("r".into(), RecordValue::Str("x".into()))]
    );
    assert_eq!(span.events, [(Text::from("event"), span.start, vec![(Text::from("e"), RecordValue::Int(2))])]);
    assert_eq!(span.links, [(TRACE_ID, [0; 8], vec![(Text::from("l"), RecordValue::Int(3))])]);
    assert_eq!(span.scope.attrs, [(Text::from("i"), RecordValue::Int(4))]);
    assert_eq!((span.scope.name.as_str(), span.scope.version.as_str()), ("lib", "1.2"));
    assert_eq!(span.span_id, id(42));
}

#[test]
fn a_service_has_one_resource() {
    let spans = parse_spans("a: x resource.tier=1\nb: y\n  a: z\n").unwrap();
    assert_eq!(spans[2].resource, spans[0].resource, "given once, shared by every span of the service");
    assert_eq!(*spans[1].resource, [(Text::from("service.name"), RecordValue::Str("b".into()))]);
    let error = fails("a: x resource.tier=1\na: y resource.tier=2\n");
    assert_eq!(error.line, 2);
    assert!(error.message.contains("(line 1)") && error.message.contains("one resource"), "{error}");
}

#[test]
fn ids_parents_orphans_and_duplicates() {
    let spans = parse_spans("a id=2\n  b\n  c parent=99\n  d id=2\ne parent=#x\nf #x\ng parent=0\n  h parent=\"ff\"\n")
        .unwrap();
    let ids: Vec<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids, [id(2), id(1), id(3), id(2), id(4), id(5), id(6), id(7)], "generated ids skip given ones");
    let parents: Vec<[u8; 8]> = spans.iter().map(|s| s.parent_id).collect();
    assert_eq!(parents, [[0; 8], id(2), id(99), id(2), id(5), [0; 8], [0; 8], id(255)]);
}

#[test]
fn blank_lines_and_comments() {
    let spans = parse_spans("// a trace\n\na // the root\n  // between\n  b name=\"x // y\"\n").unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].attrs, [(Text::from("name"), RecordValue::Str("x // y".into()))]);
    assert_eq!(parse_spans("").unwrap(), vec![]);
    assert_eq!(parse_spans("  \n// only comments\n").unwrap(), vec![]);
}

#[test]
fn errors_say_where_and_what() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("a 5ms", 1, 3, "a time range is `START+DURATION` or `START..END`"),
        ("a 5+10ms", 1, 3, "`5` needs a unit"),
        ("a 10ms..5ms", 1, 3, "ends before it starts"),
        ("a\n  b k=GET", 2, 5, "strings are written in quotes, as in \"GET\""),
        ("a k=nil", 1, 3, "cannot be `nil`"),
        ("a k=5ms", 1, 3, "hold no durations"),
        ("a k=[[1]]", 1, 3, "do not nest"),
        ("a k=\"open", 1, 5, "never closed"),
        ("a k=[1, 2", 1, 3, "never closed with `]`"),
        ("a status=\"error\"", 1, 3, "write `status=error`: a status is a word"),
        ("a status=bad", 1, 3, "is not a status"),
        ("a message=boom", 1, 3, "`message` is a string in quotes"),
        ("a server client", 1, 10, "the kind is given twice"),
        ("a 0ms+1ms 0ms+2ms", 1, 11, "the times are given twice"),
        ("a server extra", 1, 10, "`extra` is not a kind"),
        ("a #x #y", 1, 6, "at most one label"),
        ("a #x!", 1, 3, "is not a label"),
        ("a #x\nb #x", 2, 3, "`#x` is used twice"),
        ("a parent=#nope", 1, 1, "no span has that label"),
        ("a id=0", 1, 3, "a span id is a positive number"),
        ("a k=1 k=2", 1, 7, "`k` is given twice"),
        ("svc: server", 1, 6, "expected a span name"),
        ("svc:", 1, 5, "expected a span name"),
        (":", 1, 1, "a service name goes before"),
        ("\ta", 1, 1, "not tabs"),
        ("a =1", 1, 3, "needs a key"),
    ];
    for &(text, line, column, wanted) in cases {
        let error = fails(text);
        assert!(error.message.contains(wanted), "{text:?}: {error}");
        assert_eq!((error.line, error.column), (line, column), "{text:?}: {error}");
    }
}

#[test]
fn every_bad_line_is_reported() {
    let errors = parse("a k=x\nb\nc 5ms\n").unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 3]);
    assert_eq!(
        errors[0].to_string(),
        "line 1, column 3: `x` is not a value: strings are written in quotes, as in \"x\""
    );
}

#[test]
fn traces_build_and_keep_their_shape() {
    let trace = parse("root server 0ms+10ms\n  child client 1ms+2ms #c\n").unwrap();
    let mut builder = crate::trace::TraceBuilder::new(TRACE_ID);
    for span in trace.spans {
        builder.add(span);
    }
    let built = builder.build();
    assert_eq!(built.len(), 2);
    assert_eq!(built.parent_of(1), Some(0));
    assert_eq!(built.repairs, crate::trace::Repairs::default());
}
