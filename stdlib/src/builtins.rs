//! The builtin functions: their signatures, docs, examples and implementations.
//!
//! Each builtin lives in its own file, `src/builtins/<name>.rs`, exposing
//! `pub const BUILTIN: Builtin`. The registry is not a hand-kept list: `build.rs`
//! scans that directory and generates the module declarations and the [`all`]
//! table, so adding a builtin is adding a file.

use crate::{Type, Value};

include!(concat!(env!("OUT_DIR"), "/builtins_generated.rs"));

/// A builtin function of the rule language.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub kind: BuiltinKind,
    /// Positional parameters, in order. Optional ones come last.
    pub params: &'static [Param],
    /// Named parameters (`by: …`), in any order at the call site.
    pub named: &'static [Param],
    pub returns: Returns,
    /// One paragraph of markdown.
    pub doc: &'static str,
    pub examples: &'static [Example],
    /// The implementation, for scalar builtins. It receives the positional
    /// arguments as the call supplied them (trailing optional ones may be
    /// missing) and returns `Value::Nil` for arguments of the wrong type or
    /// `nil`; it never panics. `None` for aggregates (special forms the compiler
    /// and VM implement) and for builtins implemented elsewhere (see their doc).
    pub eval: Option<fn(&[Value]) -> Value>,
}

/// How a builtin is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinKind {
    /// A pure function of its arguments.
    Scalar,
    /// Evaluates its expression argument once per span of a spanset.
    Aggregate,
    /// Keeps state across traces (a rolling baseline).
    Stateful,
}

/// A parameter of a builtin.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    /// The types an argument may have. `Type::Any` accepts every type;
    /// `list<any>` accepts every list.
    pub accepts: &'static [Type],
    pub optional: bool,
}

/// What a builtin returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Returns {
    Type(Type),
    /// The type of the positional argument at this index (`abs(250ms)` is a duration).
    SameAsParam(usize),
}

/// An example call and its result, both written as the language writes them.
/// For builtins with an `eval` the examples run as tests; for the others the
/// result is illustrative (it depends on the trace or on state).
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub call: &'static str,
    pub result: &'static str,
}

/// Every builtin, sorted by name.
pub fn all() -> &'static [&'static Builtin] {
    ALL
}

/// The builtin called `name`.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    ALL.binary_search_by(|builtin| builtin.name.cmp(name)).ok().map(|i| ALL[i])
}

impl Builtin {
    /// The number of positional arguments a call may pass: `min..=max`.
    pub fn arity(&self) -> (usize, usize) {
        let required = self.params.iter().filter(|param| !param.optional).count();
        (required, self.params.len())
    }

    /// The named parameter called `name`.
    pub fn named_param(&self, name: &str) -> Option<&'static Param> {
        self.named.iter().find(|param| param.name == name)
    }

    /// The result type for a call whose positional arguments have `args` types.
    /// `Type::Any` if `SameAsParam` points past the arguments given.
    pub fn return_type(&self, args: &[Type]) -> Type {
        match self.returns {
            Returns::Type(ty) => ty,
            Returns::SameAsParam(index) => args.get(index).copied().unwrap_or(Type::Any),
        }
    }
}

impl Param {
    /// Whether an argument of static type `ty` fits this parameter. An argument
    /// of type `any` fits every parameter (it is checked at run time).
    pub fn accepts_type(&self, ty: Type) -> bool {
        ty == Type::Any || self.accepts.iter().any(|&accepted| type_fits(ty, accepted))
    }
}

/// Whether a value of type `actual` fits where `expected` is wanted: equal
/// types, `any` on either side, and lists whose element types fit.
pub fn type_fits(actual: Type, expected: Type) -> bool {
    match (actual, expected) {
        (Type::Any, _) | (_, Type::Any) => true,
        (Type::List(actual), Type::List(expected)) => type_fits(*actual, *expected),
        (actual, expected) => actual == expected,
    }
}

/// Shorthand for the builtin files: a required parameter.
pub(crate) const fn param(name: &'static str, accepts: &'static [Type]) -> Param {
    Param { name, accepts, optional: false }
}

/// Shorthand for the builtin files: an optional parameter.
pub(crate) const fn optional(name: &'static str, accepts: &'static [Type]) -> Param {
    Param { name, accepts, optional: true }
}

/// The text of a string argument, if `args[index]` is a string.
pub(crate) fn str_arg(args: &[Value], index: usize) -> Option<&str> {
    match args.get(index) {
        Some(Value::Str(text)) => Some(text),
        _ => None,
    }
}

/// `args[0]` mapped to one case by `map` (`nil` if it is not a string). An
/// ASCII string without a letter of the other case (`other_case`) is its
/// own mapping: the argument is handed back, not copied (`GET`, `SELECT`,
/// most keys). `lower` and `upper` share this.
pub(crate) fn case_mapped(args: &[Value], other_case: fn(&u8) -> bool, map: fn(&str) -> String) -> Value {
    match str_arg(args, 0) {
        Some(s) if s.is_ascii() && !s.as_bytes().iter().any(other_case) => args[0].clone(),
        Some(s) => Value::str(&map(s)),
        None => Value::Nil,
    }
}

/// The value of an int argument, if `args[index]` is an int.
pub(crate) fn int_arg(args: &[Value], index: usize) -> Option<i64> {
    match args.get(index) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The bytes of a string or bytes argument.
pub(crate) fn bytes_arg(args: &[Value], index: usize) -> Option<&[u8]> {
    match args.get(index) {
        Some(Value::Str(text)) => Some(text.as_bytes()),
        Some(Value::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

/// Every scalar type and lists: what `string(x)` converts and what a
/// `novelty` key may be.
pub(crate) const SCALARS_AND_LISTS: &[Type] = &[
    Type::String,
    Type::Int,
    Type::Float,
    Type::Bool,
    Type::Duration,
    Type::Time,
    Type::Status,
    Type::Kind,
    Type::Bytes,
    Type::list_of(Type::Any),
];

/// `ceil`, `floor`, `round`: a float rounded by `to_whole` as an int (`Nil` if
/// not finite or out of range); an int comes back as it is.
pub(crate) fn round_to_int(args: &[Value], to_whole: fn(f64) -> f64) -> Value {
    match args.first() {
        Some(Value::Float(x)) => float_to_int(to_whole(*x)),
        Some(Value::Int(i)) => Value::Int(*i),
        _ => Value::Nil,
    }
}

/// A whole float as an int, or `Nil` if it is not finite or out of range.
pub(crate) fn float_to_int(x: f64) -> Value {
    // 2^63 is exactly representable; every float in [-2^63, 2^63) fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if x.is_finite() && (-LIMIT..LIMIT).contains(&x) { Value::Int(x as i64) } else { Value::Nil }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example_syntax::{parse_call, parse_literal};

    #[test]
    fn rounding_non_finite_and_out_of_range_gives_nil() {
        for round in [f64::ceil, f64::floor, f64::round] {
            for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 9.3e18, -9.3e18] {
                assert_eq!(round_to_int(&[Value::Float(x)], round), Value::Nil, "{x}");
            }
            assert_eq!(round_to_int(&[Value::Float(-9_223_372_036_854_775_808.0)], round), Value::Int(i64::MIN));
        }
    }

    #[test]
    fn registry_is_sorted_unique_and_named_after_files() {
        assert_eq!(ALL.len(), FILE_STEMS.len());
        for (builtin, stem) in ALL.iter().zip(FILE_STEMS) {
            assert_eq!(builtin.name, *stem, "src/builtins/{stem}.rs defines `{}`", builtin.name);
        }
        for pair in ALL.windows(2) {
            assert!(pair[0].name < pair[1].name, "`{}` twice or out of order", pair[1].name);
        }
        assert!(lookup("lower").is_some());
        assert!(lookup("lowercase").is_none());
    }

    #[test]
    fn signatures_are_well_formed() {
        for builtin in all() {
            let name = builtin.name;
            let first_optional = builtin.params.iter().position(|p| p.optional).unwrap_or(builtin.params.len());
            assert!(builtin.params[first_optional..].iter().all(|p| p.optional), "{name}: optional before required");
            for param in builtin.params.iter().chain(builtin.named) {
                assert!(!param.accepts.is_empty(), "{name}: `{}` accepts nothing", param.name);
            }
            if let Returns::SameAsParam(index) = builtin.returns {
                assert!(index < builtin.params.len(), "{name}: SameAsParam({index}) past the params");
            }
            assert!(!builtin.doc.is_empty() && !builtin.doc.contains("\n\n"), "{name}: doc is one paragraph");
            assert!(!builtin.examples.is_empty(), "{name}: no examples");
            let expect_eval = builtin.kind == BuiltinKind::Scalar;
            if builtin.eval.is_none() && expect_eval {
                assert!(builtin.doc.contains("later issue"), "{name}: no eval and no note saying why");
            }
            if builtin.kind != BuiltinKind::Scalar {
                assert!(builtin.eval.is_none(), "{name}: aggregates and stateful builtins run in the VM");
            }
        }
    }

    #[test]
    fn examples_evaluate_to_their_results() {
        let mut ran = 0;
        for builtin in all() {
            for example in builtin.examples {
                let context = format!("{}: `{}`", builtin.name, example.call);
                assert!(example.call.starts_with(&format!("{}(", builtin.name)), "{context}: calls another function");
                let Some(eval) = builtin.eval else { continue };
                let (name, args) = parse_call(example.call).unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(name, builtin.name, "{context}");
                let (min, max) = builtin.arity();
                assert!((min..=max).contains(&args.len()), "{context}: wrong arity");
                for (arg, param) in args.iter().zip(builtin.params) {
                    let ty = arg.type_of();
                    assert!(
                        ty == Type::Nil || param.accepts_type(ty),
                        "{context}: `{}` does not accept {ty}",
                        param.name
                    );
                }
                let expected = parse_literal(example.result).unwrap_or_else(|e| panic!("{context}: {e}"));
                let actual = eval(&args);
                assert!(same(&actual, &expected), "{context}: got {}, expected {}", actual.literal(), example.result);
                let arg_types: Vec<Type> = args.iter().map(Value::type_of).collect();
                let declared = builtin.return_type(&arg_types);
                let ty = actual.type_of();
                assert!(ty == Type::Nil || type_fits(ty, declared), "{context}: returned {ty}, declared {declared}");
                ran += 1;
            }
        }
        assert!(ran >= 40, "only {ran} examples ran");
    }

    /// Equality with a tolerance for floats (the examples write short decimals).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            (Value::List(xs), Value::List(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(ys.iter()).all(|(x, y)| same(x, y))
            }
            _ => a == b,
        }
    }

    #[test]
    fn wrong_types_and_nil_give_nil() {
        let odd_values =
            [Value::Nil, Value::Bool(true), Value::Status(crate::value::Status::Error), Value::list([Value::Nil])];
        for builtin in all() {
            let Some(eval) = builtin.eval else { continue };
            for value in &odd_values {
                for arity in 0..=builtin.params.len() + 1 {
                    let args = vec![value.clone(); arity];
                    let result = eval(&args);
                    if !result.is_nil() {
                        // Only total functions of any value (`string`, `len` of a list) may answer.
                        assert!(matches!(builtin.name, "string" | "len"), "{}({args:?}) gave {result:?}", builtin.name);
                    }
                }
            }
        }
    }

    #[test]
    fn type_fits_lists_and_any() {
        assert!(type_fits(Type::list_of(Type::String), Type::list_of(Type::Any)));
        assert!(type_fits(Type::list_of(Type::Any), Type::list_of(Type::Int)));
        assert!(!type_fits(Type::list_of(Type::Int), Type::list_of(Type::String)));
        assert!(!type_fits(Type::Int, Type::Float));
        let p = param("x", &[Type::String, Type::Bytes]);
        assert!(p.accepts_type(Type::Any) && p.accepts_type(Type::Bytes) && !p.accepts_type(Type::Int));
    }
}
