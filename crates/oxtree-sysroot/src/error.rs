//! Errors of sysroot operations, each carrying what was being done.

pub use oxtree_io::IoError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SysrootError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// The sysroot's directory cannot be opened.
    #[error("opening sysroot {path}")]
    OpenDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] oxtree_repo::RepoError),
    #[error("{0} is not an ostree sysroot (no ostree/repo)")]
    NotASysroot(String),
    /// Staging needs a booted system to finalize it at shutdown (or an
    /// explicit run directory, whose owner finalizes it).
    /// Freezing and thawing /boot after the sync failed; nothing was
    /// switched.
    #[error("During fsfreeze-thaw: {0}")]
    Freeze(String),
    #[error("Cannot stage deployment: Not currently booted into an OSTree system")]
    StageNotBooted,
    #[error("stateroot '{0}' does not exist (run `admin os-init {0}`)")]
    NoStateroot(String),
    #[error("invalid stateroot name '{0}'")]
    InvalidStateroot(String),
    #[error("no deployment at index {index} (there are {count})")]
    NoSuchIndex { index: usize, count: usize },
    #[error("Failed to find kernel in /usr/lib/modules, /usr/lib/ostree-boot or /boot of {0}")]
    NoKernel(String),
    #[error("not enough free space in /boot: {needed} bytes needed for the kernel and initramfs, {available} available; nothing was changed")]
    BootSpace { needed: u64, available: u64 },
    #[error("/etc merge conflict at '{path}': {reason}; nothing was changed")]
    EtcConflict { path: String, reason: String },
    #[error("invalid boot loader entry {file}: {reason}")]
    BadEntry { file: String, reason: String },
    #[error("invalid origin file {file}: {reason}")]
    BadOrigin { file: String, reason: String },
    #[error("bootloader '{0}' is not supported (supported: auto, none, bls, grub-static, uboot)")]
    UnsupportedBootloader(String),
    /// `try_open_locked`: another process holds the sysroot lock.
    #[error("sysroot {0} is busy: another process holds its lock (ostree/lock)")]
    Busy(String),
    /// The request cannot be done as asked in this sysroot: no or an
    /// ambiguous stateroot, no such deployment to act on, a refused
    /// downgrade, a kernel argument edit that does not apply, a commit that
    /// is not a bootable tree, an already unlocked deployment… The
    /// caller's to fix; nothing was changed. (An agent answers it as a bad
    /// request, not a failure.)
    #[error("{0}")]
    Refused(String),
    /// Malformed or inconsistent data on disk or from a peer (a boot
    /// loader file, a staged-deployment record, a vanished directory), or
    /// a tool that failed.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, SysrootError>;

oxtree_io::io_context!(pub SysrootError);
