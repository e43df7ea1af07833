//! Extension point for automatic rollback (boot counting and health
//! checks, the boot issue). Nothing lives here yet.
//!
//! The intended shape: after the next boot of a deployment staged or
//! deployed by [`crate::upgrade`], a health check decides whether it
//! reached steady state; if not, the previous default is made the default
//! again (as [`crate::rollback`] does) and the reason is recorded so that
//! [`crate::status`] can show it. [`crate::Host`] and its entries are
//! `#[non_exhaustive]`: add fields there (e.g. a `bootHealth` entry under
//! `status`) without breaking readers, and report progress through
//! [`crate::Event`].
