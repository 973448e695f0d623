//! A rule program made ready to run: its regular expressions compiled, its
//! builtin names resolved to implementations, and (when the JIT compiled it)
//! its native code. Done once per pack load.

use betrace_compiler::bytecode::RuleProgram;
use betrace_stdlib::Value;
use betrace_stdlib::builtins;

/// A builtin implementation (`None`: not implemented yet; the call yields nil).
pub type BuiltinFn = Option<fn(&[Value]) -> Value>;

#[derive(Debug)]
pub struct LoadedRule {
    pub program: RuleProgram,
    pub patterns: Vec<regex::Regex>,
    pub builtins: Vec<BuiltinFn>,
    /// Native code for the rule's functions (see [`crate::jit`]); `None`: the
    /// interpreter runs it.
    pub native: Option<crate::jit::NativeRule>,
}

/// Why a program could not be loaded (a pack built by another version, or corrupted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    BadPattern { rule: String, pattern: String, reason: String },
    UnknownBuiltin { rule: String, name: String },
    BadProgram { rule: String, reason: String },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::BadPattern { rule, pattern, reason } => {
                write!(f, "rule `{rule}`: cannot compile pattern {pattern:?}: {reason}")
            }
            LoadError::UnknownBuiltin { rule, name } => write!(f, "rule `{rule}`: unknown builtin `{name}`"),
            LoadError::BadProgram { rule, reason } => write!(f, "rule `{rule}`: malformed program: {reason}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadedRule {
    pub fn load(program: RuleProgram) -> Result<LoadedRule, LoadError> {
        let patterns = program
            .patterns
            .iter()
            .map(|pattern| {
                regex::Regex::new(pattern).map_err(|e| LoadError::BadPattern {
                    rule: program.name.clone(),
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let builtins = program
            .builtins
            .iter()
            .map(|name| {
                builtins::lookup(name)
                    .map(|b| b.eval)
                    .ok_or_else(|| LoadError::UnknownBuiltin { rule: program.name.clone(), name: name.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::verify::verify(&program)
            .map_err(|reason| LoadError::BadProgram { rule: program.name.clone(), reason })?;
        Ok(LoadedRule { program, patterns, builtins, native: None })
    }
}
