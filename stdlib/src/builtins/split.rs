//! `split(s, sep)`: a string cut at every occurrence of a separator.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "split",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String]), param("sep", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::list_of(Type::String)),
    doc: "The parts of `s` between occurrences of `sep`, in order, including empty ones \
          (`n` separators give `n + 1` parts). An empty `sep` splits `s` into its \
          characters. `nil` if either argument is not a string.",
    examples: &[
        Example { call: r#"split("a,b,,c", ",")"#, result: r#"["a", "b", "", "c"]"# },
        Example { call: r#"split("/api/v1", "/")"#, result: r#"["", "api", "v1"]"# },
        Example { call: r#"split("", ",")"#, result: r#"[""]"# },
        Example { call: r#"split("été", "")"#, result: r#"["é", "t", "é"]"# },
        Example { call: r#"split(nil, ",")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match (str_arg(args, 0), str_arg(args, 1)) {
        (Some(s), Some("")) => Value::list(s.chars().map(|ch| Value::str(ch.encode_utf8(&mut [0; 4])))),
        (Some(s), Some(sep)) => Value::list(s.split(sep).map(Value::str)),
        _ => Value::Nil,
    }
}
