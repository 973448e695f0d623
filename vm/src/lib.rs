//! Bytecode, interpreter, JIT and the trace data model (issue 3 onward).
