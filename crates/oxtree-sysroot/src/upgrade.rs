//! `admin upgrade` / `admin switch` / `admin kargs edit-in-place`: the
//! parts that need no network. Fetching from a remote is the caller's job
//! (the sysroot library does not depend on the transport); it then asks
//! here which commit to deploy and whether that is allowed.
//!
//! - The source is the merge deployment's origin: `[origin] refspec`
//!   (`REMOTE:REF` or a local `REF`), or `override-commit` if set.
//! - A target whose commit timestamp is older than the current one is a
//!   downgrade and refused unless allowed (ostree's check).
//! - The new origin is the old one minus transient state (`pinned`,
//!   `unlocked`), with the refspec replaced for `switch`.

use crate::deployment::Deployment;
use crate::error::{Result, SysrootError};
use crate::kargs::KernelArgs;
use crate::write::WriteReport;
use crate::KeyFile;
use crate::Sysroot;
use oxtree_object::Checksum;

/// `REMOTE:REF` → (Some(REMOTE), REF); `REF` → (None, REF).
pub fn split_refspec(refspec: &str) -> (Option<&str>, &str) {
    match refspec.split_once(':') {
        Some((r, b)) if !r.is_empty() => (Some(r), b),
        Some((_, b)) => (None, b),
        None => (None, refspec),
    }
}

/// Where an upgrade comes from.
#[derive(Clone, Debug)]
pub struct UpgradeSource {
    pub osname: String,
    pub merge: Deployment,
    pub refspec: String,
    pub remote: Option<String>,
    pub branch: String,
    /// `[origin] override-commit`.
    pub override_commit: Option<String>,
}

/// What an upgrade would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeCheck {
    /// The target is what the merge deployment already runs.
    NoChange,
    /// Deploy this commit.
    Deploy(Checksum),
}

/// An edit of `kargs edit-in-place`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KargEdit {
    /// Start from no arguments (`instutil set-kargs` without --merge).
    Clear,
    /// Set an argument: every value of its key replaced by this one, or
    /// appended when the key is absent.
    Set(String),
    Append(String),
    AppendIfMissing(String),
    Delete(String),
    DeleteIfPresent(String),
    Replace(String),
}

/// The origin a new deployment gets: transient state dropped, and the
/// refspec replaced when given.
pub fn new_origin(old: Option<&KeyFile>, refspec: Option<&str>) -> KeyFile {
    let mut o = old.cloned().unwrap_or_default();
    o.remove("libostree-transient", "pinned");
    o.remove("origin", "unlocked");
    if let Some(r) = refspec {
        o.set("origin", "refspec", r);
        o.remove("origin", "override-commit");
    }
    o
}

impl Sysroot {
    /// The merge deployment of `os` and the refspec it follows.
    pub fn upgrade_source(&self, os: Option<&str>) -> Result<UpgradeSource> {
        let osname = self.resolve_osname(os)?;
        let merge = self.merge_deployment(&osname).cloned().ok_or_else(|| {
            SysrootError::Refused(format!("no deployment of stateroot {osname} to upgrade"))
        })?;
        let refspec = merge
            .refspec()
            .ok_or_else(|| {
                SysrootError::Refused(format!(
                    "deployment {} has no origin refspec; cannot upgrade",
                    merge.name()
                ))
            })?
            .to_string();
        let (remote, branch) = split_refspec(&refspec);
        let (remote, branch) = (remote.map(str::to_string), branch.to_string());
        let override_commit = merge
            .origin
            .as_ref()
            .and_then(|o| o.get("origin", "override-commit"))
            .map(str::to_string);
        Ok(UpgradeSource {
            osname,
            merge,
            refspec,
            remote,
            branch,
            override_commit,
        })
    }

    /// Compare the target `rev` (now in the sysroot repo) with what `merge`
    /// runs; a chronologically older target is an error unless allowed.
    pub fn check_upgrade(
        &self,
        merge: &Deployment,
        rev: &str,
        allow_downgrade: bool,
    ) -> Result<UpgradeCheck> {
        let new = self.repo().resolve_rev(rev)?;
        if new.to_hex() == merge.csum {
            return Ok(UpgradeCheck::NoChange);
        }
        if !allow_downgrade {
            let cur = Checksum::from_hex(&merge.csum)
                .map_err(|e| SysrootError::Invalid(format!("bad deployment checksum: {e}")))?;
            let old_ts = self.repo().load_commit(&cur)?.timestamp;
            let new_ts = self.repo().load_commit(&new)?.timestamp;
            if new_ts < old_ts {
                return Err(SysrootError::Refused(format!(
                    "Upgrade target revision '{new}' with timestamp {} is chronologically older than current revision '{}' with timestamp {}; use --allow-downgrade to permit",
                    fmt_ts(new_ts),
                    merge.csum,
                    fmt_ts(old_ts)
                )));
            }
        }
        Ok(UpgradeCheck::Deploy(new))
    }

    /// `kargs edit-in-place`: edit the kernel arguments of deployment
    /// `index` and write the list again (a new bootversion, one atomic
    /// swap). The `ostree=` argument cannot be edited.
    pub fn edit_kargs(&mut self, index: usize, edits: &[KargEdit]) -> Result<WriteReport> {
        let mut list = self.deployments().to_vec();
        let d = list.get_mut(index).ok_or(SysrootError::NoSuchIndex {
            index,
            count: self.deployments().len(),
        })?;
        let mut k = KernelArgs::parse(&d.kargs);
        for e in edits {
            let arg = match e {
                KargEdit::Clear => {
                    k = KernelArgs::parse("");
                    continue;
                }
                KargEdit::Set(a)
                | KargEdit::Append(a)
                | KargEdit::AppendIfMissing(a)
                | KargEdit::Delete(a)
                | KargEdit::DeleteIfPresent(a)
                | KargEdit::Replace(a) => a,
            };
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                return Err(SysrootError::Refused(format!(
                    "invalid kernel argument '{arg}'"
                )));
            }
            if KernelArgs::key_of(arg) == "ostree" {
                return Err(SysrootError::Refused(
                    "the ostree= kernel argument is managed by the deployment and cannot be edited"
                        .into(),
                ));
            }
            match e {
                KargEdit::Clear => {}
                KargEdit::Set(a) => k.replace(a),
                KargEdit::Append(a) => k.append(a),
                KargEdit::AppendIfMissing(a) => {
                    if !k.contains(a) {
                        k.append(a)
                    }
                }
                KargEdit::Delete(a) => {
                    if !k.delete(a) {
                        return Err(SysrootError::Refused(format!(
                            "Failed to find kernel argument '{a}'"
                        )));
                    }
                }
                KargEdit::DeleteIfPresent(a) => {
                    k.delete(a);
                }
                KargEdit::Replace(a) => {
                    if !k.replace_existing(a) {
                        return Err(SysrootError::Refused(format!(
                            "No key '{}' found to replace",
                            KernelArgs::key_of(a)
                        )));
                    }
                }
            }
        }
        d.kargs = k.to_cmdline();
        self.write_deployments(list)
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the year unsigned,
/// where chrono's `%Y` would sign one past 9999); past chrono's range
/// (year 262143), the seconds as they are.
fn fmt_ts(t: u64) -> String {
    use chrono::{Datelike, Timelike};
    match i64::try_from(t)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    {
        Some(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        None => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn refspecs_and_time() {
        assert_eq!(split_refspec("origin:os/main"), (Some("origin"), "os/main"));
        assert_eq!(split_refspec("os/main"), (None, "os/main"));
        assert_eq!(fmt_ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_ts(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(fmt_ts(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(fmt_ts(253_402_300_800), "10000-01-01T00:00:00Z");
        let mut o = KeyFile::parse("[origin]\nrefspec=a:b\nunlocked=hotfix\n").unwrap();
        o.set("libostree-transient", "pinned", "true");
        let n = new_origin(Some(&o), Some("c:d"));
        assert_eq!(n.get("origin", "refspec"), Some("c:d"));
        assert_eq!(n.get("origin", "unlocked"), None);
        assert_eq!(n.get("libostree-transient", "pinned"), None);
    }
}
