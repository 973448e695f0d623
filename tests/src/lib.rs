//! Shared support for BeTrace's end-to-end tests and benchmarks: generators of
//! realistic rule files of any size and of random spans ([`spans`]), a
//! runner of rule unit tests ([`rule_tests`]), and free loopback ports.

pub mod rule_tests;
pub mod spans;

use std::net::{SocketAddr, TcpListener};

/// A free port of 127.0.0.1: bound, read and let go, so a server started
/// next can take it (unless another process takes it first).
pub fn free_loopback_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("a bound listener has an address")
}

/// A rule file of `count` distinct, realistic rules that check clean. The mix
/// follows the standard pack: selectors on names and attributes, bindings,
/// structural operators, aggregates, regexes and message templates.
pub fn generated_rules(count: usize) -> String {
    let mut out = String::with_capacity(count * 260);
    out.push_str("attributes {\n  span.app.tenant: string\n  span.app.retries: int\n}\n\n");
    for i in 0..count {
        let service = format!("svc-{}", i % 97);
        let rule = match i % 6 {
            0 => format!(
                "rule slow_server_{i} {{\n  severity: medium\n  when {{ kind = server && resource.service.name = \"{service}\" }}\n  never {{ kind = server && duration > {}ms }}\n}}\n",
                100 + i % 900
            ),
            1 => format!(
                "rule auth_before_admin_{i} {{\n  severity: high\n  tags: [\"soc2:CC6.1\"]\n  message: \"{{req.name}} on {service} has no auth check\"\n  when req = {{ span.http.route =~ `/api/v[0-9]+/admin{i}/.*` && kind = server }}\n  always req >> {{ name = \"auth.check\" && status != error }}\n}}\n"
            ),
            2 => format!(
                "rule error_status_{i} {{\n  severity: low\n  when {{ span.http.response.status_code >= 500 && resource.service.name = \"{service}\" }}\n  always {{ span.http.response.status_code >= 500 && status = error }}\n}}\n"
            ),
            3 => format!(
                "rule retries_{i} {{\n  severity: medium\n  when {{ name = \"http.request.{i}\" }}\n  never count({{ name = \"http.request.{i}\" && span.app.retries > 0 }}) > 3\n}}\n"
            ),
            4 => format!(
                "rule db_under_server_{i} {{\n  severity: info\n  description: \"database calls of {service} run inside a request\"\n  when db = {{ span.db.system.name = \"postgresql\" && resource.service.name = \"{service}\" }}\n  never {{ kind = server }} !>> db\n}}\n"
            ),
            _ => format!(
                "rule tenant_latency_{i} {{\n  severity: critical\n  when {{ span.app.tenant = \"t{i}\" }}\n  never {{ span.app.tenant = \"t{i}\" }} | avg(duration) > 2s\n}}\n"
            ),
        };
        out.push_str(&rule);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rules_check_clean() {
        let text = generated_rules(60);
        let report = betrace_compiler::check_file(&text, &betrace_compiler::CheckConfig::default());
        assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
        assert_eq!(report.checked.rules.len(), 60);
    }
}
