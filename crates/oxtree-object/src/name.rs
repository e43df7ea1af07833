//! Validation of file names taken from dirtree objects.
//!
//! Names come from repository bytes, which may be hostile. Every name is
//! checked here before any filesystem call uses it.

use crate::error::{ObjectError, Result};

pub fn validate_filename(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "Invalid empty filename"
    } else if name == "." || name == ".." {
        "Invalid special element . or .. in filename"
    } else if name.contains('/') {
        "Invalid / in filename"
    } else if name.contains('\0') {
        "Invalid NUL in filename"
    } else {
        return Ok(());
    };
    Err(ObjectError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rejects_hostile_names() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
            assert!(validate_filename(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "...", ".hidden", "sp ace", "ü", "a\\b"] {
            validate_filename(good).unwrap();
        }
    }
}
