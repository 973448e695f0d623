//! The registry of diagnostic codes. Every diagnostic the compiler can emit has
//! exactly one entry here. Codes are grouped in numbered ranges and are never
//! reused: a retired code stays in [`RETIRED`] so that nobody takes it again.
//!
//! | range | what                                   |
//! |-------|----------------------------------------|
//! | E0xx  | reading the file: lexing and parsing   |
//! | E1xx  | names: unknown, duplicate, misplaced   |
//! | E2xx  | types and values                       |
//! | E3xx  | cost and limits                        |
//! | E4xx  | rule structure                         |
//! | W5xx  | warnings                               |

use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One entry of the registry.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    /// `E201`, `W500`.
    pub id: &'static str,
    /// A short kebab-case name, stable like the id (`status-compared-with-string`).
    pub name: &'static str,
    pub severity: Severity,
}

impl Code {
    const fn error(id: &'static str, name: &'static str) -> Code {
        Code { id, name, severity: Severity::Error }
    }

    const fn warning(id: &'static str, name: &'static str) -> Code {
        Code { id, name, severity: Severity::Warning }
    }
}

macro_rules! codes {
    ($($constant:ident = $kind:ident($id:literal, $name:literal);)*) => {
        $(pub const $constant: &Code = &Code::$kind($id, $name);)*
        /// Every code in use, in registry order.
        pub const ALL: &[&Code] = &[$($constant),*];
    };
}

codes! {
    // E0xx: reading the file
    UNEXPECTED_CHAR = error("E001", "unexpected-character");
    UNTERMINATED_STRING = error("E002", "unterminated-string");
    UNTERMINATED_COMMENT = error("E003", "unterminated-comment");
    INVALID_ESCAPE = error("E004", "invalid-escape");
    INT_OUT_OF_RANGE = error("E005", "int-out-of-range");
    DURATION_OUT_OF_RANGE = error("E006", "duration-out-of-range");
    UNEXPECTED_TOKEN = error("E007", "unexpected-token");
    UNEXPECTED_EOF = error("E008", "unexpected-end-of-file");
    NESTING_TOO_DEEP = error("E009", "nesting-too-deep");
    INVALID_UTF8 = error("E010", "invalid-utf8");
    BINARY_FILE = error("E011", "binary-file");
    FILE_TOO_LARGE = error("E012", "file-too-large");

    // E1xx: names
    UNKNOWN_NAME = error("E100", "unknown-name");
    UNKNOWN_INTRINSIC = error("E101", "unknown-intrinsic");
    UNKNOWN_FUNCTION = error("E102", "unknown-function");
    DUPLICATE_RULE = error("E103", "duplicate-rule");
    DUPLICATE_LET = error("E104", "duplicate-let");
    CYCLIC_LET = error("E105", "cyclic-let");
    RESERVED_NAME = error("E106", "reserved-name");
    INTRINSIC_WITHOUT_SPAN = error("E107", "intrinsic-without-span");
    UNKNOWN_SPAN_MEMBER = error("E108", "unknown-span-member");
    DUPLICATE_ATTRIBUTE_DECL = error("E109", "duplicate-attribute-declaration");
    BAD_ATTRIBUTE_DECL = error("E110", "bad-attribute-declaration");
    UNKNOWN_FIELD = error("E111", "unknown-field");
    DUPLICATE_FIELD = error("E112", "duplicate-field");
    UNKNOWN_NAMED_ARG = error("E113", "unknown-named-argument");
    DUPLICATE_BINDING = error("E114", "duplicate-binding");
    INCOMPLETE_PATH = error("E115", "incomplete-attribute-path");

    // E2xx: types and values
    TYPE_MISMATCH = error("E200", "type-mismatch");
    STATUS_COMPARED_WITH_STRING = error("E201", "status-compared-with-string");
    KIND_COMPARED_WITH_STRING = error("E202", "kind-compared-with-string");
    BAD_OPERANDS = error("E203", "bad-operand-types");
    NOT_A_CONDITION = error("E204", "not-a-condition");
    WRONG_ARITY = error("E205", "wrong-arity");
    BAD_ARGUMENT = error("E206", "bad-argument-type");
    INVALID_REGEX = error("E207", "invalid-regex");
    REGEX_NOT_LITERAL = error("E208", "regex-not-literal");
    NOT_A_SPANSET = error("E209", "not-a-spanset");
    IN_NEEDS_LIST = error("E210", "in-needs-list");
    MIXED_LIST = error("E211", "mixed-list");
    BAD_FIELD_VALUE = error("E212", "bad-field-value");
    UNKNOWN_TYPE = error("E213", "unknown-type");
    BAD_TEMPLATE = error("E214", "bad-message-template");
    BAD_PIPELINE = error("E215", "bad-pipeline-stage");
    NIL_ORDERING = error("E216", "nil-in-ordering");
    DIVISION_BY_ZERO = error("E217", "division-by-zero");
    BAD_SEVERITY = error("E218", "bad-severity");
    AGGREGATE_VALUE_NOT_NUMERIC = error("E219", "aggregate-value-not-numeric");
    SPAN_AS_VALUE = error("E220", "span-used-as-value");
    OPTION_NOT_CONSTANT = error("E221", "option-not-constant");

    // E3xx: cost and limits
    RULE_TOO_COSTLY = error("E300", "rule-too-costly");
    REGEX_TOO_LARGE = error("E301", "regex-too-large");
    STRING_TOO_LONG = error("E302", "string-too-long");
    TOO_MANY_ITEMS = error("E303", "too-many-items");

    // E4xx: rule structure
    NO_CHECK_CLAUSE = error("E400", "rule-without-always-or-never");
    NO_WHEN_CLAUSE = error("E401", "rule-without-when");
    SEVERAL_WHEN_CLAUSES = error("E402", "several-when-clauses");
    MISSING_SEVERITY = error("E403", "missing-severity");
    WHEN_AFTER_CHECK = error("E404", "when-after-check");

    // W5xx: warnings
    UNKNOWN_ATTRIBUTE_SIMILAR = warning("W500", "attribute-name-typo");
    DEPRECATED_ATTRIBUTE = warning("W501", "deprecated-attribute");
    NEVER_TRUE = warning("W502", "condition-never-true");
    ALWAYS_TRUE = warning("W503", "condition-always-true");
    UNUSED_LET = warning("W504", "unused-let");
    NO_RULES = warning("W505", "no-rules");
    DUPLICATE_TAG = warning("W506", "duplicate-tag");
    DECLARED_TYPE_DIFFERS = warning("W507", "declared-type-differs-from-convention");
    UNUSED_BINDING = warning("W508", "unused-binding");
    NOT_IN_ENUM = warning("W509", "value-not-in-enum");
}

/// Codes that were used once and must never be given out again.
pub const RETIRED: &[&str] = &[];

/// Looks a code up by its id (`E201`).
pub fn by_id(id: &str) -> Option<&'static Code> {
    ALL.iter().copied().find(|code| code.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_and_names_are_unique_and_never_retired() {
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for code in ALL {
            assert!(ids.insert(code.id), "duplicate id {}", code.id);
            assert!(names.insert(code.name), "duplicate name {}", code.name);
            assert!(!RETIRED.contains(&code.id), "{} is retired", code.id);
        }
    }

    #[test]
    fn prefixes_match_severity_and_range_order() {
        for code in ALL {
            let expected = if code.id.starts_with('W') { Severity::Warning } else { Severity::Error };
            assert_eq!(code.severity, expected, "{}", code.id);
            assert_eq!(code.id.len(), 4, "{}", code.id);
        }
        let ids: Vec<_> = ALL.iter().map(|c| c.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "keep the registry in numeric order");
    }
}
