//! Compose and layer: build ostree commits from real Debian packages and
//! layer extra packages on top of a deployed base commit.
//!
//! Contract between the modules (both compose and layering rely on it):
//! - `layout` owns the deployable layout of a Debian root: `/etc` lives in
//!   `/usr/etc`, `/var` content becomes `usr/lib/tmpfiles.d/oxtree-var.conf`
//!   entries, `/home /opt /srv /root /mnt /usr/local` are symlinks into
//!   `/var`, and the dpkg database lives in `usr/share/dpkg/database` with
//!   `/var/lib/dpkg` recreated at boot as a symlink to it. It converts both
//!   ways: `to_deployable` after packages are installed, `to_installable`
//!   before apt/dpkg run over a checkout of a deployable commit.
//! - `packages` reads the dpkg database of a root and produces the package
//!   list stored in commit metadata (`oxtree.packages`), which `db list` and
//!   `db diff` read back.
//! - `sandbox` runs Debian tools (apt, dpkg, maintainer scripts) confined to
//!   a root with bubblewrap.
//!
//! The library never prints; long steps report progress through callbacks.

pub mod commit;
pub mod compose;
pub mod error;
mod fsat;
pub mod layer;
pub mod layout;
pub mod overlay;
pub mod packages;
pub mod sandbox;
pub mod sources;
pub mod treefile;
pub mod units;

pub use commit::commit_root;
pub use compose::{compose_tree, ComposeOptions, Composed, Event};
pub use error::{ComposeError, Result};
pub use layout::{to_deployable, to_installable, LayoutReport};
pub use packages::{Package, PackageDiff};
pub use sandbox::{run_in_root, SandboxOptions};
pub use treefile::Treefile;
