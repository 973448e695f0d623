//! Tenants, named by the `X-Scope-OrgID` header as Grafana, Tempo and Loki
//! do. A request without the header belongs to the default tenant (the empty
//! name). A tenant's spans are assembled apart from every other tenant's
//! (the shard key is tenant and trace id) and meet only that tenant's packs.

use std::sync::Arc;

/// A tenant's name; empty for the default tenant.
pub type Tenant = Arc<str>;

/// The header (HTTP) and metadata key (gRPC) naming the tenant, lower case
/// as gRPC metadata needs it.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// The longest tenant name accepted (Cortex and Tempo allow 150 characters).
pub const MAX_TENANT_LEN: usize = 150;

/// The tenant a request names: none or an empty value is the default tenant.
/// Names are letters, digits and `!-_.*'()` as in Tempo, and never `.` or
/// `..` (a tenant name becomes a directory name).
pub fn parse_tenant(header: Option<&str>) -> Result<Tenant, String> {
    let name = header.unwrap_or("").trim();
    if name.is_empty() {
        return Ok(Tenant::from(""));
    }
    if name.len() > MAX_TENANT_LEN {
        return Err(format!("tenant id is longer than {MAX_TENANT_LEN} characters"));
    }
    if name == "." || name == ".." {
        return Err(format!("tenant id `{name}` is not allowed"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c))) {
        return Err(format!("tenant id `{name}` has the character {bad:?}; use letters, digits and !-_.*'()"));
    }
    Ok(Tenant::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_header_is_the_default_tenant() {
        assert_eq!(&*parse_tenant(None).unwrap(), "");
        assert_eq!(&*parse_tenant(Some("  ")).unwrap(), "");
        assert_eq!(&*parse_tenant(Some("acme-prod")).unwrap(), "acme-prod");
    }

    #[test]
    fn names_that_could_escape_a_directory_are_refused() {
        for bad in ["..", ".", "a/b", "a\\b", "tenant\0"] {
            assert!(parse_tenant(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(parse_tenant(Some(&"x".repeat(151))).is_err());
    }
}
