use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use betrace_compiler::bytecode::{CheckKind, CheckProgram, Const, Func, Memo, Op, RuleProgram};
use betrace_compiler::hir::{Severity, StructuralOp};
use betrace_compiler::{CheckConfig, SourceFile, check_files, compile_file, lower};

use super::verify;
use crate::loaded::{LoadError, LoadedRule};

/// A rule whose `when` is function 0, with `true` as constant 0.
fn program(funcs: Vec<Vec<Op>>, registers: u16, set_registers: u16) -> RuleProgram {
    RuleProgram {
        name: "hand_made".into(),
        description: None,
        severity: Severity::Low,
        tags: Vec::new(),
        enabled: true,
        funcs: funcs.into_iter().map(|code| Func { code }).collect(),
        when: 0,
        binding_set: None,
        checks: Vec::new(),
        message: Vec::new(),
        consts: vec![Const::Bool(true)],
        patterns: Vec::new(),
        builtins: Vec::new(),
        novelty: Vec::new(),
        registers,
        set_registers,
        cost_degree: 1,
        triggers: None,
        early: false,
    }
}

fn refused(program: &RuleProgram) -> String {
    match verify(program) {
        Ok(()) => panic!("accepted {:#?}", program.funcs),
        Err(reason) => reason,
    }
}

#[test]
fn a_straight_line_read_before_write_is_refused() {
    let p = program(vec![vec![Op::Move { dst: 1, src: 0 }, Op::Return { src: 1 }]], 2, 0);
    assert_eq!(
        refused(&p),
        "function 0, instruction 0 (Move { dst: 1, src: 0 }) reads register 0 before every path to it writes it"
    );
    // Reading and writing one register in one instruction reads first.
    let p = program(vec![vec![Op::Not { dst: 0, src: 0 }, Op::Return { src: 0 }]], 1, 0);
    assert!(refused(&p).contains("reads register 0"));
    // Written first, it passes.
    let p =
        program(vec![vec![Op::Const { dst: 0, value: 0 }, Op::Move { dst: 1, src: 0 }, Op::Return { src: 1 }]], 2, 0);
    assert_eq!(verify(&p), Ok(()));
}

/// `r0 = true; if r0 { r1 = … (then) } [else { r1 = … }]; return r1`.
fn branches(write_on_both: bool) -> RuleProgram {
    let mut code = vec![Op::Const { dst: 0, value: 0 }, Op::JumpIfNotTrue { cond: 0, target: 4 }];
    code.push(Op::Const { dst: 1, value: 0 });
    code.push(Op::Jump { target: 5 });
    code.push(if write_on_both { Op::Const { dst: 1, value: 0 } } else { Op::CurrentSpan { dst: 2 } });
    code.push(Op::Return { src: 1 });
    program(vec![code], 3, 0)
}

#[test]
fn a_register_written_on_one_branch_only_is_refused_after_the_join() {
    let reason = refused(&branches(false));
    assert!(reason.starts_with("function 0, instruction 5 (Return { src: 1 }) reads register 1"), "{reason}");
    assert_eq!(verify(&branches(true)), Ok(()));
    // The same with a conditional jump straight to the join (lowering's `&&`).
    let p = program(
        vec![vec![
            Op::Const { dst: 0, value: 0 },
            Op::JumpIfTrue { cond: 0, target: 3 },
            Op::Const { dst: 1, value: 0 },
            Op::Return { src: 1 },
        ]],
        2,
        0,
    );
    assert!(refused(&p).starts_with("function 0, instruction 3 (Return { src: 1 }) reads register 1"));
}

#[test]
fn a_set_register_read_before_written_is_refused() {
    let p = program(vec![vec![Op::NonEmpty { dst: 0, set: 1 }, Op::Return { src: 0 }]], 1, 2);
    assert!(refused(&p).contains("reads set register 1 before"));
    let p = program(
        vec![vec![
            Op::SelectAll { dst: 0 },
            Op::SetOr { dst: 2, a: 0, b: 1 },
            Op::NonEmpty { dst: 0, set: 2 },
            Op::Return { src: 0 },
        ]],
        1,
        3,
    );
    assert!(refused(&p).starts_with("function 0, instruction 1 (SetOr { dst: 2, a: 0, b: 1 }) reads set register 1"));
}

#[test]
fn a_list_or_call_over_an_unwritten_register_is_refused() {
    let list = |len| {
        program(
            vec![vec![
                Op::Const { dst: 0, value: 0 },
                Op::Const { dst: 1, value: 0 },
                Op::MakeList { dst: 3, start: 0, len },
                Op::Return { src: 3 },
            ]],
            4,
            0,
        )
    };
    assert_eq!(verify(&list(2)), Ok(()));
    assert!(refused(&list(3)).contains("reads register 2 before"));
    let mut call = program(
        vec![vec![
            Op::Const { dst: 1, value: 0 },
            Op::Call { dst: 0, builtin: 0, args_start: 1, args_len: 2 },
            Op::Return { src: 0 },
        ]],
        3,
        0,
    );
    call.builtins.push("lower".into());
    assert!(refused(&call).contains("reads register 2 before"));
}

#[test]
fn functions_do_not_see_each_others_registers() {
    // A predicate may not read what its caller wrote before the `Select`…
    let caller = vec![
        Op::Const { dst: 0, value: 0 },
        Op::Select { dst: 0, pred: 1, memo: Memo::Trace },
        Op::NonEmpty { dst: 1, set: 0 },
        Op::Return { src: 1 },
    ];
    let p = program(vec![caller, vec![Op::Return { src: 0 }]], 2, 1);
    assert!(refused(&p).starts_with("function 1, instruction 0 (Return { src: 0 }) reads register 0"));
    // …nor the caller what the predicate wrote: it may run zero times.
    let caller = vec![Op::Select { dst: 0, pred: 1, memo: Memo::Never }, Op::Return { src: 1 }];
    let pred = vec![Op::Const { dst: 1, value: 0 }, Op::Return { src: 1 }];
    let p = program(vec![caller, pred], 2, 1);
    assert!(refused(&p).starts_with("function 0, instruction 1 (Return { src: 1 }) reads register 1"));
}

#[test]
fn a_bound_when_must_write_its_binding_set_on_every_path() {
    // `r0 = true; if r0 jump to `target`; set 0 = all; set 0 = all; return r0`.
    let when = |target| {
        let mut p = program(
            vec![vec![
                Op::Const { dst: 0, value: 0 },
                Op::JumpIfTrue { cond: 0, target },
                Op::SelectAll { dst: 0 },
                Op::SelectAll { dst: 0 },
                Op::Return { src: 0 },
            ]],
            1,
            1,
        );
        p.binding_set = Some(0);
        p
    };
    assert_eq!(verify(&when(2)), Ok(()));
    assert_eq!(verify(&when(3)), Ok(()));
    assert_eq!(
        refused(&when(4)),
        "function 0 (`when`) can return at instruction 4 without writing the binding set, set register 0"
    );
    // Only `when` must, whichever function it is.
    let mut p = when(2);
    p.funcs.push(Func { code: vec![Op::Const { dst: 0, value: 0 }, Op::Return { src: 0 }] });
    assert_eq!(verify(&p), Ok(()));
    p.when = 1;
    assert!(refused(&p).starts_with("function 1 (`when`) can return at instruction 1 without writing the binding set"));
}

#[test]
fn witness_sets_may_be_left_unwritten() {
    // `never { a } || { b }`: when `{ a }` is true, `{ b }` is never computed;
    // `eval.rs` takes only the witnesses written in the check's own run.
    let check = vec![
        Op::SelectAll { dst: 0 },
        Op::NonEmpty { dst: 0, set: 0 },
        Op::JumpIfTrue { cond: 0, target: 5 },
        Op::SelectAll { dst: 1 },
        Op::NonEmpty { dst: 0, set: 1 },
        Op::Return { src: 0 },
    ];
    let mut p = program(vec![vec![Op::Const { dst: 0, value: 0 }, Op::Return { src: 0 }], check], 1, 2);
    p.checks.push(CheckProgram { kind: CheckKind::Never, func: 1, witnesses: vec![0, 1], source: String::new() });
    assert_eq!(verify(&p), Ok(()));
}

#[test]
fn unreachable_instructions_are_not_checked_but_jumps_must_land_inside() {
    let code = vec![
        Op::Const { dst: 0, value: 0 },
        Op::Jump { target: 3 },
        Op::Move { dst: 1, src: 1 },
        Op::Return { src: 0 },
    ];
    assert_eq!(verify(&program(vec![code], 2, 0)), Ok(()));
    let code = vec![Op::Const { dst: 0, value: 0 }, Op::JumpIfTrue { cond: 0, target: 3 }, Op::Return { src: 0 }];
    assert_eq!(refused(&program(vec![code], 1, 0)), "function 0, instruction 1: bad jump target 3");
}

#[test]
fn loading_refuses_the_program_and_names_the_rule() {
    let p = program(vec![vec![Op::Return { src: 0 }]], 1, 0);
    match LoadedRule::load(p) {
        Err(LoadError::BadProgram { rule, reason }) => {
            assert_eq!(rule, "hand_made");
            assert!(reason.contains("instruction 0 (Return { src: 0 }) reads register 0"), "{reason}");
        }
        other => panic!("expected a bad program, got {:?}", other.map(|_| ())),
    }
}

/// The workspace's rule files, by directory (a directory is a pack), and
/// the ```btr examples of its Markdown files.
fn repository_rules(dir: &Path, packs: &mut BTreeMap<PathBuf, Vec<SourceFile>>, examples: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            repository_rules(&path, packs, examples);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            if name.ends_with(".btr") {
                packs.entry(dir.to_path_buf()).or_default().push(SourceFile { name, text });
            } else if name.ends_with(".md") {
                let mut rest = text.as_str();
                while let Some(start) = rest.find("```btr\n") {
                    let body = &rest[start + 7..];
                    let end = body.find("```").unwrap_or(body.len());
                    examples.push(body[..end].to_string());
                    rest = &body[end..];
                }
            }
        }
    }
}

#[test]
fn every_program_the_compiler_writes_is_accepted() {
    // Also from files with errors: what is lowered of them must verify too.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (mut packs, mut examples) = (BTreeMap::new(), Vec::new());
    repository_rules(&root, &mut packs, &mut examples);
    let mut programs = Vec::new();
    for (dir, files) in &packs {
        let reports = check_files(files, &CheckConfig::default());
        for (report, file) in reports.iter().zip(files) {
            let origin = dir.join(&file.name).display().to_string();
            programs
                .extend(report.checked.rules.iter().map(|rule| (origin.clone(), lower::lower_rule(rule, &file.text))));
        }
    }
    for (index, text) in examples.iter().enumerate() {
        let (lowered, _) = compile_file(text, &CheckConfig::default());
        programs.extend(lowered.into_iter().map(|p| (format!("Markdown example {index}"), p)));
    }
    for file in betrace_stdlib::packs::STANDARD {
        let (lowered, _) = compile_file(file.source, &CheckConfig::default());
        programs.extend(lowered.into_iter().map(|p| ("the embedded standard pack".to_string(), p)));
    }
    for (source, program) in &programs {
        if let Err(reason) = verify(program) {
            panic!("rule `{}` of {source} refused: {reason}\n{:#?}", program.name, program.funcs);
        }
    }
    // The walk found the repository's rules, with the shapes the check is about.
    let jumps = |p: &RuleProgram| p.funcs.iter().flat_map(|f| &f.code).any(|op| matches!(op, Op::JumpIfTrue { .. }));
    let lists = |p: &RuleProgram| p.funcs.iter().flat_map(|f| &f.code).any(|op| matches!(op, Op::MakeList { .. }));
    assert!(programs.len() > 200, "only {} programs", programs.len());
    assert!(programs.iter().any(|(_, p)| p.binding_set.is_some()));
    assert!(programs.iter().any(|(_, p)| jumps(p)));
    assert!(programs.iter().any(|(_, p)| lists(p)));
}

/// `when`: `s0 = {true}` (memoized per trace), then `second`, then
/// `r0 = s0 is not empty`; function 1 is the predicate `true`.
fn memo_program(second: Op) -> RuleProgram {
    let select = Op::Select { dst: 0, pred: 1, memo: Memo::Trace };
    let when = vec![select, second, Op::NonEmpty { dst: 0, set: 0 }, Op::Return { src: 0 }];
    let pred = vec![Op::Const { dst: 0, value: 0 }, Op::Return { src: 0 }];
    program(vec![when, pred], 1, 2)
}

#[test]
fn a_memoized_register_written_by_another_instruction_is_refused() {
    assert_eq!(
        refused(&memo_program(Op::SelectAll { dst: 0 })),
        "function 0, instruction 1 (SelectAll { dst: 0 }) writes set register 0, \
         which holds the memoized result of Select { dst: 0, pred: 1, memo: Trace }"
    );
    // Another memoized instruction is no better: it would take the first one's result.
    let other = Op::Structural { dst: 0, op: StructuralOp::Child, a: 0, b: 0, memo: Memo::Trace };
    assert!(refused(&memo_program(other)).contains("instruction 1 (Structural"));
    // The same instruction again computes the same result: it may share the register.
    assert_eq!(verify(&memo_program(Op::Select { dst: 0, pred: 1, memo: Memo::Trace })), Ok(()));
    // Another register is free to use.
    assert_eq!(verify(&memo_program(Op::SelectAll { dst: 1 })), Ok(()));
}
