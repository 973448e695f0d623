//! The syntax tree of a `.btr` file. Every node carries its source [`Span`]; the
//! tree records what was written, not what it means (names are resolved and
//! types checked in the compiler).

use std::fmt;

/// A half-open byte range `start..end` in the source text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The same span shifted right by `offset` bytes (for text parsed out of a string).
    pub fn shifted(self, offset: u32) -> Span {
        Span { start: self.start + offset, end: self.end + offset }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A name as written, with where it was written.
#[derive(Clone, PartialEq, Debug)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A whole `.btr` file.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, PartialEq, Debug)]
pub enum Item {
    Attributes(AttributesBlock),
    Let(LetDecl),
    Rule(RuleDecl),
    /// Text the parser skipped while recovering from a syntax error.
    Error(Span),
}

/// `attributes { span.payment.amount: float … }`
#[derive(Clone, PartialEq, Debug)]
pub struct AttributesBlock {
    pub decls: Vec<AttributeDecl>,
    pub span: Span,
}

#[derive(Clone, PartialEq, Debug)]
pub struct AttributeDecl {
    pub path: Path,
    pub ty: TypeExpr,
    pub span: Span,
}

/// A type as written in an `attributes { }` block: `string`, `[int]`.
#[derive(Clone, PartialEq, Debug)]
pub enum TypeExpr {
    Named(Ident),
    List(Box<TypeExpr>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(ident) => ident.span,
            TypeExpr::List(_, span) => *span,
        }
    }
}

/// `let name = expr`
#[derive(Clone, PartialEq, Debug)]
pub struct LetDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `rule name { fields… clauses… }`
#[derive(Clone, PartialEq, Debug)]
pub struct RuleDecl {
    pub name: Ident,
    pub items: Vec<RuleItem>,
    pub span: Span,
}

#[derive(Clone, PartialEq, Debug)]
pub enum RuleItem {
    Field(Field),
    Clause(Clause),
    Error(Span),
}

/// `severity: critical`
#[derive(Clone, PartialEq, Debug)]
pub struct Field {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClauseKind {
    When,
    Always,
    Never,
}

impl ClauseKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ClauseKind::When => "when",
            ClauseKind::Always => "always",
            ClauseKind::Never => "never",
        }
    }
}

/// `when x = S`, `always E`, `never E`.
#[derive(Clone, PartialEq, Debug)]
pub struct Clause {
    pub kind: ClauseKind,
    /// The name bound by `when NAME = …`.
    pub binding: Option<Ident>,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Clone, PartialEq, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, PartialEq, Debug)]
pub enum ExprKind {
    Literal(Literal),
    /// A dotted name: `name`, `span.http.route`, `.http.route`, `x.start`,
    /// `parent.resource.service.name`. Its meaning is decided by name resolution.
    Path(Path),
    /// A scoped intrinsic: `span:duration`, `trace:rootName`.
    Scoped {
        scope: Ident,
        name: Ident,
    },
    /// `{ pred }`; `{ }` (no predicate) selects every span.
    Selector(Option<Box<Expr>>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Call),
    /// TraceQL's pipeline form: `S | count() > 3`.
    Pipe(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    /// An expression the parser could not read (a diagnostic was reported).
    Error,
}

#[derive(Clone, PartialEq, Debug)]
pub enum Literal {
    /// The string's value, escapes decoded.
    String(String),
    Int(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
    Bool(bool),
    Nil,
}

/// `name` or `span.http.route` or `.http.route` or `span."key with spaces"`.
#[derive(Clone, PartialEq, Debug)]
pub struct Path {
    /// Written as `.a.b` (span attribute, then resource attribute).
    pub leading_dot: bool,
    pub segments: Vec<Segment>,
}

impl Path {
    /// The segments joined with dots, as an attribute key would be.
    pub fn joined(&self, from: usize) -> String {
        let mut out = String::new();
        for (i, segment) in self.segments[from.min(self.segments.len())..].iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&segment.name);
        }
        out
    }
}

#[derive(Clone, PartialEq, Debug)]
pub struct Segment {
    pub name: String,
    /// Written in quotes (`span."key with spaces"`).
    pub quoted: bool,
    pub span: Span,
}

#[derive(Clone, PartialEq, Debug)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
}

/// A call argument, positional or named (`by: trace:rootName`).
#[derive(Clone, PartialEq, Debug)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UnaryOp {
    Not,
    Neg,
}

/// Binary operators as written. Several are spelt the same for values and for
/// spansets (`>` is "greater than" or "child of"; `!~` is "does not match" or
/// "not a sibling of"); the type checker decides which from the operand types.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum BinaryOp {
    Or,
    And,
    /// `=` or `==`
    Eq,
    Ne,
    /// `<`: less than, or (spansets) parent of
    Lt,
    Le,
    /// `>`: greater than, or (spansets) child of
    Gt,
    Ge,
    /// `=~`
    Match,
    /// `!~`: does not match, or (spansets) not a sibling of
    NotMatch,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    /// `>>`
    Descendant,
    /// `<<`
    Ancestor,
    /// `~`
    Sibling,
    /// `!>`
    NotChild,
    /// `!>>`
    NotDescendant,
    /// `!<`
    NotParent,
    /// `!<<`
    NotAncestor,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Match => "=~",
            BinaryOp::NotMatch => "!~",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Descendant => ">>",
            BinaryOp::Ancestor => "<<",
            BinaryOp::Sibling => "~",
            BinaryOp::NotChild => "!>",
            BinaryOp::NotDescendant => "!>>",
            BinaryOp::NotParent => "!<",
            BinaryOp::NotAncestor => "!<<",
        }
    }

    /// Binding strength: higher binds tighter. All operators are left-associative.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
            _ => 3,
        }
    }
}

impl UnaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Not => "!",
            UnaryOp::Neg => "-",
        }
    }
}

/// Precedence of the pipeline operator `|` (lowest) and of unary operators (highest).
pub const PIPE_PRECEDENCE: u8 = 0;
pub const UNARY_PRECEDENCE: u8 = 6;
