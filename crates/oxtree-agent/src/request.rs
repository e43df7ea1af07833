//! The bodies of the mutating requests: parsed from untrusted JSON and
//! checked (names, refspecs, conflicting options) before an operation is
//! queued, so that a bad request is a 400 that changes nothing.
//! [`parse`] is the whole parser (and the fuzz target's entry point).

use serde::{Deserialize, Serialize};

/// Most bytes any request body may have (larger bodies get 413 before
/// they are read whole).
pub const MAX_BODY: usize = 64 * 1024;
/// Most packages one request may name.
const MAX_PACKAGES: usize = 256;
/// Most kernel argument edits one request may make.
const MAX_KARGS: usize = 64;
/// Longest refspec, revision or stateroot name accepted.
const MAX_NAME: usize = 512;

/// What an upgrade does once the update is fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Fetch and say whether an update is available; deploy nothing.
    Check,
    /// Stage the update (finalized at shutdown).
    Stage,
    /// Deploy the update now (boot entries written), no reboot.
    #[default]
    Deploy,
    /// Deploy the update and reboot through the agent's reboot hook.
    Apply,
    /// Fetch the update into the repo; deploy nothing (a later
    /// `deploy-only` deploys it without the network).
    PullOnly,
    /// Deploy what an earlier `pull-only` fetched; no network.
    DeployOnly,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upgrade {
    #[serde(default)]
    pub mode: UpgradeMode,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub allow_downgrade: bool,
    #[serde(default)]
    pub override_commit: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollback {
    #[serde(default)]
    pub reboot: bool,
}

/// `undeploy` and `set-default`: a deployment by index (0: the default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Index {
    pub index: usize,
}

/// `pin`: pin (or with `unpin`, unpin) deployments by index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pin {
    pub indexes: Vec<usize>,
    #[serde(default)]
    pub unpin: bool,
}

/// `admin deploy`, with its options (the kernel argument edits apply to
/// the merge deployment's arguments, or to the host's `/proc/cmdline`
/// with `kargProcCmdline`, or to none with `kargNone`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deploy {
    /// Refspec or commit checksum.
    pub rev: String,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub stage: bool,
    #[serde(default)]
    pub reboot: bool,
    #[serde(default)]
    pub lock_finalization: bool,
    /// `NAME=VALUE`: replace (or add) an argument.
    #[serde(default)]
    pub karg: Vec<String>,
    #[serde(default)]
    pub karg_append: Vec<String>,
    #[serde(default)]
    pub karg_delete: Vec<String>,
    #[serde(default)]
    pub karg_proc_cmdline: bool,
    #[serde(default)]
    pub karg_none: bool,
    /// An origin file's text, used instead of `[origin] refspec=REV`.
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub retain: bool,
    #[serde(default)]
    pub retain_pending: bool,
    #[serde(default)]
    pub retain_rollback: bool,
    #[serde(default)]
    pub not_as_default: bool,
    #[serde(default)]
    pub no_merge: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Switch {
    /// `REMOTE:REF` or `REF`.
    pub refspec: String,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub stage: bool,
    #[serde(default)]
    pub reboot: bool,
}

/// Layer (`install`) or take away (`uninstall`) packages, remove base
/// packages (`overrideRemove`) or undo such removals (`overrideReset`, or
/// all of them with `overrideResetAll`); exactly one of these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Packages {
    #[serde(default)]
    pub install: Vec<String>,
    #[serde(default)]
    pub uninstall: Vec<String>,
    #[serde(default)]
    pub override_remove: Vec<String>,
    #[serde(default)]
    pub override_reset: Vec<String>,
    #[serde(default)]
    pub override_reset_all: bool,
    /// Only ask apt what would be installed and removed; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub stage: bool,
    #[serde(default)]
    pub reboot: bool,
}

/// Edit the kernel arguments of a deployment in place (as `admin kargs
/// edit-in-place`); the edits apply in this order: delete,
/// delete-if-present, replace, append, append-if-missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kargs {
    /// Deployment index (default 0, the default deployment).
    #[serde(default)]
    pub deployment: usize,
    #[serde(default)]
    pub append: Vec<String>,
    #[serde(default)]
    pub append_if_missing: Vec<String>,
    #[serde(default)]
    pub delete: Vec<String>,
    #[serde(default)]
    pub delete_if_present: Vec<String>,
    /// `NAME=VALUE` or `NAME=OLD=NEW`.
    #[serde(default)]
    pub replace: Vec<String>,
}

impl Kargs {
    /// Every argument named, in the order the edits apply.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.delete
            .iter()
            .chain(&self.delete_if_present)
            .chain(&self.replace)
            .chain(&self.append)
            .chain(&self.append_if_missing)
    }
}

impl Packages {
    /// The one change asked for, or why the body is not one.
    pub fn change(&self) -> Result<oxtree_host::PackageChange, BadRequest> {
        use oxtree_host::PackageChange as C;
        let mut asked = Vec::new();
        if !self.install.is_empty() {
            asked.push(C::Install(self.install.clone()));
        }
        if !self.uninstall.is_empty() {
            asked.push(C::Uninstall(self.uninstall.clone()));
        }
        if !self.override_remove.is_empty() {
            asked.push(C::OverrideRemove(self.override_remove.clone()));
        }
        if !self.override_reset.is_empty() || self.override_reset_all {
            if self.override_reset_all && !self.override_reset.is_empty() {
                return Err(invalid("overrideResetAll takes no package list"));
            }
            asked.push(C::OverrideReset {
                all: self.override_reset_all,
                packages: self.override_reset.clone(),
            });
        }
        match asked.len() {
            1 => Ok(asked.pop().unwrap()),
            _ => Err(invalid(
                "give exactly one of install, uninstall, overrideRemove, overrideReset \
                 or overrideResetAll, with at least one package",
            )),
        }
    }
}

/// `set-origin`: make a deployment follow `remote:branch`, adding the
/// remote with `url` (and `options`) if the repo has none of that name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetOrigin {
    /// Deployment index (default: the merge deployment).
    #[serde(default)]
    pub index: Option<usize>,
    pub remote: String,
    pub url: String,
    #[serde(default)]
    pub branch: Option<String>,
    /// Settings of a newly added remote, e.g. `{"gpg-verify": "false"}`.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

impl SetOrigin {
    pub fn to_host(&self) -> oxtree_host::SetOriginRequest {
        oxtree_host::SetOriginRequest {
            index: self.index,
            remote: self.remote.clone(),
            url: self.url.clone(),
            branch: self.branch.clone(),
            options: self.options.clone().into_iter().collect(),
        }
    }
}

/// `os-init`: create a stateroot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OsInit {
    pub osname: String,
}

/// `unlock`: a writable `/usr` on a deployment (default: the booted one,
/// else the default one); `hotfix` keeps it across reboots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unlock {
    #[serde(default)]
    pub deployment: Option<usize>,
    #[serde(default)]
    pub hotfix: bool,
}

/// Bodies without options (`cleanup`, `reboot`): `{}` or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A parsed, checked mutation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OpRequest {
    Upgrade(Upgrade),
    Rollback(Rollback),
    Undeploy(Index),
    SetDefault(Index),
    Pin(Pin),
    Deploy(Deploy),
    Switch(Switch),
    Packages(Packages),
    Kargs(Kargs),
    SetOrigin(SetOrigin),
    Unlock(Unlock),
    OsInit(OsInit),
    Cleanup,
    Reboot,
}

impl OpRequest {
    /// The operation's kind (`upgrade`, `packages`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            OpRequest::Upgrade(_) => "upgrade",
            OpRequest::Rollback(_) => "rollback",
            OpRequest::Undeploy(_) => "undeploy",
            OpRequest::SetDefault(_) => "set-default",
            OpRequest::Pin(_) => "pin",
            OpRequest::Deploy(_) => "deploy",
            OpRequest::Switch(_) => "switch",
            OpRequest::Packages(_) => "packages",
            OpRequest::Kargs(_) => "kargs",
            OpRequest::SetOrigin(_) => "set-origin",
            OpRequest::Unlock(_) => "unlock",
            OpRequest::OsInit(_) => "os-init",
            OpRequest::Cleanup => "cleanup",
            OpRequest::Reboot => "reboot",
        }
    }
}

/// The kinds [`parse`] knows (the last segment of `POST /v1/host/KIND`).
pub const KINDS: &[&str] = &[
    "upgrade",
    "rollback",
    "undeploy",
    "set-default",
    "pin",
    "deploy",
    "switch",
    "packages",
    "kargs",
    "set-origin",
    "unlock",
    "os-init",
    "cleanup",
    "reboot",
];

/// Why a request was refused (a 400 or 404; nothing was changed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("unknown operation {0:?}")]
    UnknownKind(String),
    #[error("malformed request body: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parse and check the body of `POST /v1/host/{kind}`. An empty body is
/// `{}`.
pub fn parse(kind: &str, body: &[u8]) -> Result<OpRequest, BadRequest> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // serde would take a struct from an array too; bodies are objects.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BadRequest::Json("the body must be a JSON object".into()));
    }
    fn json<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, BadRequest> {
        serde_json::from_slice(b).map_err(|e| BadRequest::Json(e.to_string()))
    }
    let r = match kind {
        "upgrade" => OpRequest::Upgrade(json(body)?),
        "rollback" => OpRequest::Rollback(json(body)?),
        "undeploy" => OpRequest::Undeploy(json(body)?),
        "set-default" => OpRequest::SetDefault(json(body)?),
        "pin" => OpRequest::Pin(json(body)?),
        "deploy" => OpRequest::Deploy(json(body)?),
        "switch" => OpRequest::Switch(json(body)?),
        "packages" => OpRequest::Packages(json(body)?),
        "kargs" => OpRequest::Kargs(json(body)?),
        "set-origin" => OpRequest::SetOrigin(json(body)?),
        "unlock" => OpRequest::Unlock(json(body)?),
        "os-init" => OpRequest::OsInit(json(body)?),
        "cleanup" => {
            json::<Empty>(body)?;
            OpRequest::Cleanup
        }
        "reboot" => {
            json::<Empty>(body)?;
            OpRequest::Reboot
        }
        k => return Err(BadRequest::UnknownKind(k.chars().take(64).collect())),
    };
    check(&r)?;
    Ok(r)
}

/// A body that must be empty or `{}` (unit actions).
pub fn parse_empty(body: &[u8]) -> Result<(), BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<Empty>(body)
        .map(|_| ())
        .map_err(|e| BadRequest::Json(e.to_string()))
}

/// The body of `PUT /v1/network/links/{name}`: a static configuration,
/// every address checked.
pub fn parse_static_network(
    body: &[u8],
) -> Result<oxtree_system::network::StaticConfig, BadRequest> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BadRequest::Json("the body must be a JSON object".into()));
    }
    let c: oxtree_system::network::StaticConfig =
        serde_json::from_slice(body).map_err(|e| BadRequest::Json(e.to_string()))?;
    c.check().map_err(|e| invalid(e.to_string()))?;
    Ok(c)
}

fn invalid(m: impl Into<String>) -> BadRequest {
    BadRequest::Invalid(m.into())
}

fn check(r: &OpRequest) -> Result<(), BadRequest> {
    match r {
        OpRequest::Upgrade(u) => {
            check_os(&u.os)?;
            if let Some(c) = &u.override_commit {
                if !is_checksum(c) {
                    return Err(invalid("overrideCommit must be a 64-digit hex checksum"));
                }
            }
        }
        OpRequest::Deploy(d) => {
            check_os(&d.os)?;
            check_rev("rev", &d.rev)?;
            let kargs = d.karg.iter().chain(&d.karg_append).chain(&d.karg_delete);
            if kargs.clone().count() > MAX_KARGS {
                return Err(invalid(format!(
                    "more than {MAX_KARGS} kernel argument edits"
                )));
            }
            kargs.into_iter().try_for_each(|a| check_karg(a))?;
            if d.karg_proc_cmdline && d.karg_none {
                return Err(invalid("kargProcCmdline and kargNone are exclusive"));
            }
            if let Some(o) = &d.origin {
                oxtree_sysroot::KeyFile::parse(o).map_err(|e| invalid(format!("origin: {e}")))?;
            }
        }
        OpRequest::Switch(s) => {
            check_os(&s.os)?;
            if oxtree_host::is_image_reference(&s.refspec) {
                check_image(&s.refspec)?;
            } else {
                check_rev("refspec", &s.refspec)?;
            }
        }
        OpRequest::Packages(p) => {
            check_os(&p.os)?;
            use oxtree_host::PackageChange as C;
            let names = match p.change()? {
                C::Install(n) | C::Uninstall(n) | C::OverrideRemove(n) => n,
                C::OverrideReset { packages, .. } => packages,
            };
            if names.len() > MAX_PACKAGES {
                return Err(invalid(format!("more than {MAX_PACKAGES} packages")));
            }
            for n in &names {
                if !is_package_name(n) {
                    return Err(invalid(format!(
                        "invalid package name {:?}",
                        n.chars().take(80).collect::<String>()
                    )));
                }
            }
        }
        OpRequest::Kargs(k) => {
            let n = k.all().count();
            if n == 0 {
                return Err(invalid("no kernel argument edit given"));
            }
            if n > MAX_KARGS {
                return Err(invalid(format!(
                    "more than {MAX_KARGS} kernel argument edits"
                )));
            }
            k.all().try_for_each(|a| check_karg(a))?;
        }
        OpRequest::Pin(p) => {
            if p.indexes.is_empty() || p.indexes.len() > MAX_KARGS {
                return Err(invalid(format!(
                    "indexes: 1 to {MAX_KARGS} deployment indexes"
                )));
            }
        }
        OpRequest::SetOrigin(o) => {
            if o.options.len() > MAX_KARGS {
                return Err(invalid(format!("more than {MAX_KARGS} remote options")));
            }
            let req = o.to_host();
            oxtree_host::check_set_origin(&req).map_err(|e| invalid(e.to_string()))?;
        }
        OpRequest::OsInit(o) => check_os(&Some(o.osname.clone()))?,
        OpRequest::Rollback(_)
        | OpRequest::Unlock(_)
        | OpRequest::Undeploy(_)
        | OpRequest::SetDefault(_)
        | OpRequest::Cleanup
        | OpRequest::Reboot => {}
    }
    Ok(())
}

/// One kernel argument: no spaces, quotes or control characters.
fn check_karg(a: &str) -> Result<(), BadRequest> {
    let ok = !a.is_empty()
        && a.len() <= 4096
        && a.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid kernel argument {:?}",
            a.chars().take(80).collect::<String>()
        )))
    }
}

fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A stateroot name: what ostree accepts as a directory under
/// `ostree/deploy/` (no separators, no leading dot).
/// The `os` query of `GET /v1/host/config-diff`.
pub fn check_stateroot(os: &str) -> Result<(), BadRequest> {
    check_os(&Some(os.to_string()))
}

fn check_os(os: &Option<String>) -> Result<(), BadRequest> {
    let Some(os) = os else { return Ok(()) };
    let ok = !os.is_empty()
        && os.len() <= 255
        && !os.starts_with('.')
        && os
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid("invalid stateroot name"))
    }
}

/// A checksum, or `[REMOTE:]REF` with ostree's ref-name rules (no `..`
/// components, no absolute paths, no spaces or control characters).
fn check_rev(what: &str, s: &str) -> Result<(), BadRequest> {
    if s.len() > MAX_NAME {
        return Err(invalid(format!("{what} too long")));
    }
    if is_checksum(s) {
        return Ok(());
    }
    let (remote, name) = match s.split_once(':') {
        Some((r, n)) => (Some(r), n),
        None => (None, s),
    };
    let remote_ok = remote.is_none_or(|r| {
        !r.is_empty()
            && !r.starts_with('.')
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    });
    let name_ok = !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
    if remote_ok && name_ok {
        Ok(())
    } else {
        Err(invalid(format!("invalid {what}")))
    }
}

/// A container image a client may switch to: a registry only
/// (`ostree-unverified-registry:HOST[:PORT]/NAME[:TAG|@DIGEST]`, or
/// `ostree-image-signed:docker://…`, verified by the host's policy).
/// Local OCI layouts are for the CLI (the agent does not read paths a
/// client names).
fn check_image(s: &str) -> Result<(), BadRequest> {
    if s.len() > MAX_NAME {
        return Err(invalid("refspec too long"));
    }
    let Some(r) = s
        .strip_prefix("ostree-unverified-registry:")
        .or_else(|| s.strip_prefix("ostree-image-signed:docker://"))
    else {
        return Err(invalid(
            "only ostree-unverified-registry: and ostree-image-signed:docker:// image \
             references are accepted (OCI layouts only through the CLI)",
        ));
    };
    let ok = r.contains('/')
        && r.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:/@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid("invalid image reference"))
    }
}

/// A Debian package name (policy §5.6.1), optionally `:ARCH`.
pub fn is_package_name(p: &str) -> bool {
    let (name, arch) = match p.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (p, None),
    };
    let arch_ok = arch.is_none_or(|a| {
        !a.is_empty()
            && a.len() <= 32
            && a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    arch_ok
        && (2..=128).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_edits_and_overrides() {
        let ok = br#"{"remote":"mirror","url":"https://example.com/repo","branch":"os/x86_64/stable","options":{"gpg-verify":"false"}}"#;
        assert!(matches!(
            parse("set-origin", ok),
            Ok(OpRequest::SetOrigin(_))
        ));
        for bad in [
            r#"{"remote":"bad\"]\n[core","url":"https://x"}"#,
            r#"{"remote":"../x","url":"https://x"}"#,
            r#"{"remote":"m","url":"https://x\nmode=bare"}"#,
            r#"{"remote":"m","url":""}"#,
            r#"{"remote":"m","url":"https://x","branch":"../../etc"}"#,
            r#"{"remote":"m","url":"https://x","options":{"a b":"1"}}"#,
            r#"{"remote":"m","url":"https://x","options":{"k":"1\n[core]"}}"#,
            r#"{"url":"https://x"}"#,
        ] {
            assert!(parse("set-origin", bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            parse("unlock", br#"{"hotfix":true}"#).unwrap(),
            OpRequest::Unlock(Unlock {
                deployment: None,
                hotfix: true
            })
        );
        assert!(parse("unlock", br#"{"hotfix":"yes"}"#).is_err());
        let p = |b: &str| parse("packages", b.as_bytes());
        assert!(p(r#"{"overrideRemove":["less"]}"#).is_ok());
        assert!(p(r#"{"overrideReset":["less"]}"#).is_ok());
        assert!(p(r#"{"overrideResetAll":true}"#).is_ok());
        assert!(p(r#"{"overrideResetAll":true,"overrideReset":["less"]}"#).is_err());
        assert!(p(r#"{"overrideRemove":["less"],"install":["nano"]}"#).is_err());
        assert!(p(r#"{"overrideRemove":["../less"]}"#).is_err());
        assert!(matches!(
            parse("upgrade", br#"{"mode":"pull-only"}"#),
            Ok(OpRequest::Upgrade(Upgrade {
                mode: UpgradeMode::PullOnly,
                ..
            }))
        ));
    }

    #[test]
    fn parses_and_checks() {
        assert_eq!(
            parse("upgrade", b"").unwrap(),
            OpRequest::Upgrade(Upgrade::default())
        );
        let u = parse("upgrade", br#"{"mode":"stage","allowDowngrade":true}"#).unwrap();
        assert!(matches!(
            u,
            OpRequest::Upgrade(Upgrade {
                mode: UpgradeMode::Stage,
                allow_downgrade: true,
                ..
            })
        ));
        assert!(matches!(
            parse("upgrade", br#"{"mode":"sideways"}"#),
            Err(BadRequest::Json(_))
        ));
        assert!(matches!(
            parse("upgrade", br#"{"mod":"stage"}"#),
            Err(BadRequest::Json(_))
        ));
        assert!(matches!(parse("upgrade", b"{"), Err(BadRequest::Json(_))));
        assert!(matches!(
            parse("nuke", b"{}"),
            Err(BadRequest::UnknownKind(_))
        ));
        assert!(parse("cleanup", b"{}").is_ok());
        assert!(parse("cleanup", br#"{"x":1}"#).is_err());
        assert!(parse("cleanup", b"[]").is_err());
        assert!(parse("rollback", b"[true]").is_err());
        for bad in [
            "../../etc",
            "a/../b",
            "/abs",
            "a b",
            "x:",
            ":y",
            "a//b",
            "o:a\nb",
        ] {
            assert!(
                parse("switch", format!(r#"{{"refspec":{bad:?}}}"#).as_bytes()).is_err(),
                "{bad}"
            );
        }
        assert!(parse("switch", br#"{"refspec":"origin:debian/13/x86_64"}"#).is_ok());
        assert!(parse(
            "switch",
            br#"{"refspec":"ostree-unverified-registry:127.0.0.1:5000/os:v1"}"#
        )
        .is_ok());
        assert!(parse(
            "switch",
            br#"{"refspec":"ostree-image-signed:docker://127.0.0.1:5000/os:v1"}"#
        )
        .is_ok());
        for bad in [
            "ostree-unverified-image:oci:/var/x",
            "ostree-remote-image:o:docker://h/os",
            "ostree-image-signed:oci:/var/x",
            "ostree-image-signed:docker://h/../x",
            "ostree-unverified-registry:h/../x",
            "ostree-unverified-registry:h/a b",
            "ostree-unverified-registry:nohost",
        ] {
            assert!(
                parse("switch", format!(r#"{{"refspec":{bad:?}}}"#).as_bytes()).is_err(),
                "{bad}"
            );
        }
        assert!(parse("deploy", br#"{"rev":"fakeos/main","os":"../x"}"#).is_err());
        for bad in [
            "../x",
            "nano;rm",
            "-o",
            "nano:../x",
            "Nano",
            "n",
            "nano:",
            "a/b",
        ] {
            assert!(
                parse("packages", format!(r#"{{"install":[{bad:?}]}}"#).as_bytes()).is_err(),
                "{bad}"
            );
        }
        assert!(parse("packages", br#"{"install":["nano","libc6:amd64"]}"#).is_ok());
        assert!(parse("packages", br#"{"install":["nano"],"uninstall":["vim"]}"#).is_err());
        assert!(parse("packages", br#"{}"#).is_err());
        assert!(parse("kargs", br#"{"append":["quiet","console=ttyS0,115200"]}"#).is_ok());
        assert!(parse("kargs", br#"{}"#).is_err());
        for bad in ["a b", "x\ny", "", "q\"uote"] {
            assert!(
                parse("kargs", format!(r#"{{"append":[{bad:?}]}}"#).as_bytes()).is_err(),
                "{bad}"
            );
        }
    }
}
