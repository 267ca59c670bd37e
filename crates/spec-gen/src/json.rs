//! Deterministic JSON for a spec.
//!
//! oci-spec keeps capability sets in a `HashSet`, whose iteration order changes from one process
//! to the next. [`to_json`] sorts those sets, and writes object members in sorted order, so the
//! same spec always gives the same bytes (ARCHITECTURE.md: generated output is deterministic).

use oci_spec::runtime::Spec;
use serde_json::Value;

use crate::SpecError;

/// Serializes `spec` as pretty-printed JSON (two-space indent, trailing newline) whose bytes
/// depend only on the spec's contents.
///
/// # Errors
/// [`SpecError::Serialize`] if serde rejects the spec (not expected for a spec built by this
/// crate).
pub fn to_json(spec: &Spec) -> Result<String, SpecError> {
    let mut value = serde_json::to_value(spec).map_err(SpecError::Serialize)?;
    if let Some(caps) = value
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&value).map_err(SpecError::Serialize)?;
    out.push('\n');
    Ok(out)
}
