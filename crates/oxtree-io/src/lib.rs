//! The I/O error with context that every oxtree crate wraps (`RepoError::Io`,
//! `SysrootError::Io`, ...), the `.ctx(|| ...)` helper that builds it, and
//! [`Chain`], which renders an error and its sources once each.
//!
//! It is a crate of its own, below `oxtree-object`, so that the layers share
//! one definition instead of a copy each.

use std::error::Error;
use std::fmt;
use thiserror::Error;

/// What was being done (`opening repository /x`) and the I/O error it met.
#[derive(Debug, Error)]
#[error("{context}")]
pub struct IoError {
    pub context: String,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(context: impl Into<String>, source: impl Into<std::io::Error>) -> IoError {
        IoError {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Attach context to io results: `.ctx(|| format!("opening {x}"))?`, an
/// [`IoError`].
pub trait IoContext<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T, IoError>;
}

impl<T, E: Into<std::io::Error>> IoContext<T> for Result<T, E> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(f(), e))
    }
}

/// A crate's own `IoContext`: the same `.ctx(|| ...)`, giving the crate's
/// error (which wraps [`IoError`]: `Io(#[from] IoError)`), so that it is
/// also the value of a function, not only the operand of `?`:
/// `oxtree_io::io_context!(pub RepoError);`.
#[macro_export]
macro_rules! io_context {
    ($vis:vis $err:ty) => {
        /// Attach context to io results: `.ctx(|| format!("opening {x}"))`.
        $vis trait IoContext<T> {
            fn ctx<S: Into<String>>(
                self,
                f: impl FnOnce() -> S,
            ) -> std::result::Result<T, $err>;
        }

        impl<T, E: Into<std::io::Error>> IoContext<T> for std::result::Result<T, E> {
            fn ctx<S: Into<String>>(
                self,
                f: impl FnOnce() -> S,
            ) -> std::result::Result<T, $err> {
                $crate::IoContext::ctx(self, f).map_err(<$err>::from)
            }
        }
    };
}

/// An error and its sources, each rendered once: `a: b: c`. A source
/// whose text is already part of what was written (HTTP and registry
/// clients often repeat their cause in their own message) is skipped.
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.0.to_string();
        let mut src = self.0.source();
        while let Some(s) = src {
            let t = s.to_string();
            if !out.contains(&t) {
                out.push_str(": ");
                out.push_str(&t);
            }
            src = s.source();
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_keeps_the_error() {
        let r: std::io::Result<()> = Err(std::io::ErrorKind::NotFound.into());
        let e = r.ctx(|| "opening x").unwrap_err();
        assert_eq!(e.context, "opening x");
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
        let r: Result<(), rustix::io::Errno> = Err(rustix::io::Errno::NOENT);
        let e = r.ctx(|| "opening y").unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(2));
    }
}
