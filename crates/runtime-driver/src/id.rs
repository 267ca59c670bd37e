//! Container ids.

use crate::error::DriverError;

/// A new random container id: 64 lower-case hex digits (32 bytes from getrandom(2)), the form
/// podman and Docker use. Its first 12 digits are the default hostname.
///
/// # Errors
/// [`DriverError::Sys`] if the kernel's random source fails.
pub fn new_container_id() -> Result<String, DriverError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DriverError::Sys {
        call: "getrandom".into(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = super::new_container_id().unwrap();
        let b = super::new_container_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
