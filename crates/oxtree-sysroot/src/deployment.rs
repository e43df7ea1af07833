//! A deployment: a checkout of one commit in a stateroot, named
//! `CSUM.SERIAL`, with its origin keyfile and the kernel arguments of its
//! boot entry.

use crate::KeyFile;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// Stateroot (osname).
    pub osname: String,
    /// Commit checksum (hex).
    pub csum: String,
    pub deployserial: u32,
    /// SHA-256 of the kernel files; names `/boot/ostree/OS-BOOTCSUM/`.
    pub bootcsum: String,
    /// Position among deployments sharing (osname, bootcsum).
    pub bootserial: u32,
    /// Kernel arguments of the boot entry (the `ostree=` one included).
    pub kargs: String,
    /// The `.origin` keyfile, if there is one.
    pub origin: Option<KeyFile>,
}

impl Deployment {
    /// `CSUM.SERIAL`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.csum, self.deployserial)
    }

    /// `ostree/deploy/OS/deploy/CSUM.SERIAL`, relative to the sysroot.
    pub fn relpath(&self) -> String {
        format!("ostree/deploy/{}/deploy/{}", self.osname, self.name())
    }

    pub fn origin_relpath(&self) -> String {
        format!("{}.origin", self.relpath())
    }

    pub fn is_pinned(&self) -> bool {
        self.origin
            .as_ref()
            .and_then(|o| o.get("libostree-transient", "pinned"))
            == Some("true")
    }

    pub fn refspec(&self) -> Option<&str> {
        self.origin.as_ref()?.get("origin", "refspec")
    }

    /// Same deployment (stateroot, commit and serial).
    pub fn same(&self, other: &Deployment) -> bool {
        self.osname == other.osname
            && self.csum == other.csum
            && self.deployserial == other.deployserial
    }
}
