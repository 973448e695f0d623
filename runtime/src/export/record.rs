//! What one record of an export queue holds: the violations of one emitted
//! batch as an encoded OTLP `ExportTraceServiceRequest`, with what delivery
//! needs beside it — the tenant (for `X-Scope-OrgID`), how many violations
//! the request carries (for batching and metrics), and when the trace
//! completed, as wall-clock Unix nanoseconds so that the
//! completion-to-export latency stays true across a restart.
//!
//! Layout, version 1 (integers little-endian):
//! `[version u8 = 1][completed_at_unix_nanos u64][violations u32][tenant_len u16][tenant UTF-8][request]`.
//! A reader meeting another version refuses the record rather than guess.

use crate::tenant::Tenant;

pub const RECORD_VERSION: u8 = 1;

/// Bytes before the tenant name.
const FIXED_LEN: usize = 1 + 8 + 4 + 2;

/// One queued export request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRecord {
    pub tenant: Tenant,
    pub completed_at_unix_nanos: u64,
    /// Violations (spans) in `request`.
    pub violations: u32,
    /// An encoded `ExportTraceServiceRequest`.
    pub request: Vec<u8>,
}

/// A record's bytes up to its request, with room for `request_len` more.
fn header(
    tenant: &Tenant,
    completed_at_unix_nanos: u64,
    violations: u32,
    request_len: usize,
) -> Result<Vec<u8>, RecordError> {
    let tenant_len = u16::try_from(tenant.len()).map_err(|_| RecordError::TenantTooLong(tenant.len()))?;
    let mut out = Vec::with_capacity(FIXED_LEN + tenant.len() + request_len);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&completed_at_unix_nanos.to_le_bytes());
    out.extend_from_slice(&violations.to_le_bytes());
    out.extend_from_slice(&tenant_len.to_le_bytes());
    out.extend_from_slice(tenant.as_bytes());
    Ok(out)
}

/// Why bytes are not an [`ExportRecord`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    UnknownVersion(u8),
    Truncated,
    TenantNotUtf8,
    TenantTooLong(usize),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::UnknownVersion(v) => {
                write!(f, "export record version {v} is not known (this BeTrace writes {RECORD_VERSION})")
            }
            RecordError::Truncated => write!(f, "export record is truncated"),
            RecordError::TenantNotUtf8 => write!(f, "export record's tenant is not UTF-8"),
            RecordError::TenantTooLong(len) => write!(f, "export record's tenant is {len} bytes long"),
        }
    }
}

impl std::error::Error for RecordError {}

impl ExportRecord {
    /// The record's bytes: what [`encode_request`](Self::encode_request)
    /// writes, the reference its tests compare with.
    #[cfg(test)]
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let mut out = header(&self.tenant, self.completed_at_unix_nanos, self.violations, self.request.len())?;
        out.extend_from_slice(&self.request);
        Ok(out)
    }

    /// The record of a request that `write_request` appends, straight after
    /// the header (what an `ExportRecord` holding the encoded request reads
    /// back as), without encoding the request apart first and copying it in.
    /// `request_len` is a guess of its length, for the buffer's capacity.
    pub fn encode_request(
        tenant: &Tenant,
        completed_at_unix_nanos: u64,
        violations: u32,
        request_len: usize,
        write_request: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Vec<u8>, RecordError> {
        let mut out = header(tenant, completed_at_unix_nanos, violations, request_len)?;
        write_request(&mut out);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<ExportRecord, RecordError> {
        let version = *bytes.first().ok_or(RecordError::Truncated)?;
        if version != RECORD_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let fixed = bytes.get(..FIXED_LEN).ok_or(RecordError::Truncated)?;
        let completed_at_unix_nanos = u64::from_le_bytes(fixed[1..9].try_into().expect("8 bytes"));
        let violations = u32::from_le_bytes(fixed[9..13].try_into().expect("4 bytes"));
        let tenant_len = u16::from_le_bytes(fixed[13..15].try_into().expect("2 bytes")) as usize;
        let tenant = bytes.get(FIXED_LEN..FIXED_LEN + tenant_len).ok_or(RecordError::Truncated)?;
        let tenant = std::str::from_utf8(tenant).map_err(|_| RecordError::TenantNotUtf8)?;
        Ok(ExportRecord {
            tenant: Tenant::from(tenant),
            completed_at_unix_nanos,
            violations,
            request: bytes[FIXED_LEN + tenant_len..].to_vec(),
        })
    }
}

/// The violations a record carries, read from its header alone (the export
/// queues' weigh function); 0 for bytes that are not a record.
pub fn violation_count(payload: &[u8]) -> u32 {
    match payload.first() {
        Some(&RECORD_VERSION) => payload.get(9..13).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes"))),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tenant: &str) -> ExportRecord {
        ExportRecord {
            tenant: Tenant::from(tenant),
            completed_at_unix_nanos: 1_700_000_000_123_456_789,
            violations: 3,
            request: vec![0x0a, 0x02, 0x08, 0x01],
        }
    }

    #[test]
    fn a_record_round_trips_and_its_count_reads_from_the_header() {
        for tenant in ["", "acme-prod"] {
            let bytes = record(tenant).encode().unwrap();
            assert_eq!(ExportRecord::decode(&bytes).unwrap(), record(tenant));
            assert_eq!(violation_count(&bytes), 3);
        }
    }

    #[test]
    fn a_request_encoded_into_its_record_is_the_record_of_its_bytes() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
        use prost::Message;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                ..Default::default()
            }],
        };
        let record = ExportRecord { request: request.encode_to_vec(), ..record("acme") };
        let direct = ExportRecord::encode_request(&record.tenant, record.completed_at_unix_nanos, 3, 0, |out| {
            request.encode_raw(out)
        })
        .unwrap();
        assert_eq!(direct, record.encode().unwrap());
        assert_eq!(ExportRecord::decode(&direct).unwrap(), record);
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused() {
        let bytes = record("acme").encode().unwrap();
        assert_eq!(ExportRecord::decode(&bytes[..FIXED_LEN + 2]), Err(RecordError::Truncated));
        assert_eq!(ExportRecord::decode(&[]), Err(RecordError::Truncated));
        let mut future = bytes.clone();
        future[0] = 9;
        assert_eq!(ExportRecord::decode(&future), Err(RecordError::UnknownVersion(9)));
        assert_eq!(violation_count(&future), 0);
        let mut bad_tenant = bytes;
        bad_tenant[FIXED_LEN] = 0xff;
        assert_eq!(ExportRecord::decode(&bad_tenant), Err(RecordError::TenantNotUtf8));
    }
}
