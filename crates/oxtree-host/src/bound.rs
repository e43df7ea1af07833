//! Containers bound to the OS (bootc's "logically bound images"): an
//! image lists the application containers that belong to it as Quadlet
//! files linked from `/usr/lib/bootc/bound-images.d` (`NAME.container`
//! with `[Container] Image=`, or `NAME.image` with `[Image] Image=`).
//!
//! - Before a commit is deployed or staged, the images it names are pulled
//!   with podman into the sysroot's own store,
//!   `/sysroot/ostree/bootc/storage` (bootc's place; the booted system sees
//!   it at `/usr/lib/bootc/storage` as an additional image store), so the
//!   new boot runs them without the network. A pull that fails fails the
//!   transaction before anything is deployed.
//! - The cleanup after every transaction removes from that store the
//!   images no deployment names any more.
//! - A commit without bound images never runs podman.
//!
//! The lists are read from the commits in the repository, never from a
//! checkout; Quadlet files are untrusted text ([`quadlet_image`] is a fuzz
//! target) and image names are checked before podman sees them.

use crate::error::{HostError, Result};
use crate::Context;
use oxtree_object::Checksum;
use oxtree_repo::{Node, Repo};
use oxtree_sysroot::Sysroot;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// Where an image lists its bound containers.
pub const BOUND_DIR: &str = "usr/lib/bootc/bound-images.d";
/// The store, relative to the sysroot.
pub const STORE: &str = "ostree/bootc/storage";
/// Largest Quadlet file read.
const MAX_QUADLET: u64 = 1 << 20;
/// Most bound images one commit may list.
const MAX_IMAGES: usize = 256;

/// The `Image=` of a Quadlet file's `[Container]` (a `.container` file)
/// or `[Image]` (a `.image` file) section; the last one wins, as in
/// systemd's unit syntax. None when there is none or it is not a plain
/// image reference.
pub fn quadlet_image(text: &str, section: &str) -> Option<String> {
    let mut current = String::new();
    let mut image = None;
    // Continuation lines (a trailing `\`) are joined first.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "Image" {
                image = Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    image.filter(|i| is_image_name(i))
}

/// A registry image reference podman may be given: `[HOST[:PORT]/]NAME
/// [:TAG][@sha256:HEX]`, no option-like or odd characters.
pub fn is_image_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b))
        && !s.split('/').any(|c| c.is_empty() || c == "." || c == "..")
}

fn read_small(repo: &Repo, csum: &Checksum) -> Result<(oxtree_object::FileHeader, Vec<u8>)> {
    let f = repo.open_file(csum)?;
    if f.size > MAX_QUADLET {
        return Err(HostError::bad(format!(
            "{BOUND_DIR}: a file of {} bytes",
            f.size
        )));
    }
    f.read_all().map_err(|e| HostError::Failed {
        context: format!("reading {BOUND_DIR}"),
        source: e.into(),
    })
}

/// The images the commit `commit` binds, sorted.
pub fn images_of_commit(repo: &Repo, commit: &Checksum) -> Result<Vec<String>> {
    let c = repo.load_commit(commit)?;
    let root = (c.root_tree, c.root_meta);
    let Ok(Node::Dir { tree, .. }) = repo.resolve_path(root, BOUND_DIR) else {
        return Ok(Vec::new());
    };
    let mut out = BTreeSet::new();
    for f in repo.load_dirtree(&tree)?.files {
        let section = if f.name.ends_with(".container") {
            "Container"
        } else if f.name.ends_with(".image") {
            "Image"
        } else {
            continue;
        };
        // The entry is usually a symlink to the Quadlet file; one level
        // is followed, inside the commit.
        let (h, mut data) = read_small(repo, &f.checksum)?;
        if h.is_symlink() {
            let t = &h.symlink_target;
            let path = match t.strip_prefix('/') {
                Some(abs) => abs.to_string(),
                None => format!("{BOUND_DIR}/{t}"),
            };
            let Ok(Node::File(target)) = repo.resolve_path(root, &path) else {
                return Err(HostError::bad(format!(
                    "{BOUND_DIR}/{}: its target {t} is not a file of the commit",
                    f.name
                )));
            };
            let (th, d) = read_small(repo, &target)?;
            if th.is_symlink() {
                return Err(HostError::bad(format!(
                    "{BOUND_DIR}/{}: a chain of symlinks",
                    f.name
                )));
            }
            data = d;
        }
        let text = String::from_utf8_lossy(&data);
        let image = quadlet_image(&text, section).ok_or_else(|| {
            HostError::bad(format!(
                "{BOUND_DIR}/{}: no valid Image= in its [{section}] section",
                f.name
            ))
        })?;
        out.insert(image);
        if out.len() > MAX_IMAGES {
            return Err(HostError::bad(format!(
                "{BOUND_DIR}: more than {MAX_IMAGES} images"
            )));
        }
    }
    Ok(out.into_iter().collect())
}

/// podman on the sysroot's store.
struct Store {
    root: PathBuf,
    runroot: PathBuf,
}

impl Store {
    fn of(s: &Sysroot) -> Store {
        let root = s.path().join(STORE);
        let mut runroot = s.run_dir().join("oxtree/bound-storage");
        // podman refuses a runroot over 50 bytes (a sysroot's run
        // directory in a test, say): then one in the temporary directory
        // named after the store (the first 16 hex digits of the SHA-256 of
        // its path).
        if runroot.as_os_str().len() > 50 {
            use std::os::unix::ffi::OsStrExt;
            let h = Checksum::of(root.as_os_str().as_bytes()).to_hex();
            runroot = std::env::temp_dir().join(format!("oxtree-bound-{}", &h[..16]));
        }
        Store { root, runroot }
    }

    fn podman(&self) -> Command {
        let bin = std::env::var_os("OXTREE_PODMAN").unwrap_or_else(|| "podman".into());
        let mut c = Command::new(bin);
        c.arg(format!("--root={}", self.root.display()))
            .arg(format!("--runroot={}", self.runroot.display()))
            .arg("--cgroup-manager=cgroupfs")
            .arg("--events-backend=none");
        c
    }

    /// Run podman with `args`; its stdout, or an error with its stderr.
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .podman()
            .args(args)
            .output()
            .map_err(|e| HostError::Failed {
                context: "running podman (bound images need it)".into(),
                source: e.into(),
            })?;
        if !out.status.success() {
            return Err(HostError::Failed {
                context: format!(
                    "podman {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                source: "podman failed".into(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn has(&self, image: &str) -> bool {
        self.podman()
            .args(["image", "exists", image])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn id_of(&self, image: &str) -> Option<String> {
        self.run(&["image", "inspect", "--format", "{{.Id}}", image])
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// Is `image`'s registry configured insecure (`[registry "HOST"]
/// insecure=true` in the sysroot repository's config, as for image
/// origins)?
fn insecure(s: &Sysroot, image: &str) -> bool {
    let host = image.split('/').next().unwrap_or("");
    image.contains('/')
        && s.repo()
            .config()
            .get(&format!("registry \"{host}\""), "insecure")
            .is_some_and(|v| v == "true")
}

/// Pull the images commit `rev` binds that the store lacks; the images
/// it binds.
pub(crate) fn pull_for(cx: &Context, s: &Sysroot, rev: &str) -> Result<Vec<String>> {
    let commit = s.repo().resolve_rev(rev)?;
    let images = images_of_commit(s.repo(), &commit)?;
    if images.is_empty() {
        return Ok(images);
    }
    let store = Store::of(s);
    for image in &images {
        cx.cancel.check()?;
        if store.has(image) {
            continue;
        }
        cx.say(format!("Pulling bound image {image}"));
        let tls = format!("--tls-verify={}", !insecure(s, image));
        store
            .run(&["pull", "-q", &tls, image])
            .map_err(|e| e.context(format!("pulling bound image {image}")))?;
    }
    Ok(images)
}

/// Remove from the store the images no deployment (nor the staged one)
/// binds; their ids. Nothing to do (and no podman run) without a store.
/// Best effort once the list of what to keep is known: an image podman
/// cannot remove now stays for the next cleanup, and never fails the
/// transaction that already deployed.
pub(crate) fn prune(s: &Sysroot) -> Result<Vec<String>> {
    let store = Store::of(s);
    if !store.root.is_dir() {
        return Ok(Vec::new());
    }
    let mut keep = BTreeSet::new();
    for d in s.deployments().iter().chain(s.staged()) {
        let Ok(c) = Checksum::from_hex(&d.csum) else {
            continue;
        };
        for image in images_of_commit(s.repo(), &c)? {
            if !store.has(&image) {
                continue;
            }
            // An image that is there but whose id podman will not say:
            // remove nothing rather than guess.
            let Some(id) = store.id_of(&image) else {
                return Ok(Vec::new());
            };
            keep.insert(id);
        }
    }
    let Ok(listed) = store.run(&["images", "-q", "--no-trunc"]) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for id in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let id = id.trim_start_matches("sha256:");
        if keep.iter().any(|k| k.trim_start_matches("sha256:") == id) {
            continue;
        }
        if store.run(&["rmi", "-f", id]).is_ok() {
            removed.push(id.to_string());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadlet_images() {
        let c = "# a bound app\n[Unit]\nDescription=x\nImage=not-this\n\n[Container]\nImage=127.0.0.1:5000/app:1\nExec=/bin/app\n";
        assert_eq!(
            quadlet_image(c, "Container").as_deref(),
            Some("127.0.0.1:5000/app:1")
        );
        assert_eq!(quadlet_image(c, "Image"), None);
        let i = "[Image]\nImage=\"quay.io/x/y@sha256:abcd\"\n";
        assert_eq!(
            quadlet_image(i, "Image").as_deref(),
            Some("quay.io/x/y@sha256:abcd")
        );
        for bad in [
            "[Container]\nImage=--privileged\n",
            "[Container]\nImage=a/../b\n",
            "[Container]\nImage=a b\n",
            "[Container]\nImage=\n",
            "[Container]\n",
        ] {
            assert_eq!(quadlet_image(bad, "Container"), None, "{bad}");
        }
        // The last Image= wins; a continuation line is joined.
        assert_eq!(
            quadlet_image("[Container]\nImage=a:1\nImage=\\\nb:2\n", "Container").as_deref(),
            Some("b:2")
        );
    }
}
