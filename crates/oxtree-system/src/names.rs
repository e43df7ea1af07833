//! Names that arrive in requests. A unit name follows systemd's own rules
//! (`unit_name_is_valid`: at most 255 bytes of `[A-Za-z0-9:_.@\-\\]`, a
//! known type suffix, a non-empty prefix) so that nothing else reaches
//! D-Bus or journalctl's command line; a link name is what the kernel
//! accepts as an interface name, restricted to a portable character set
//! because it also becomes part of a file name in /etc.

use crate::error::{Result, SystemError};

/// The unit types systemd knows.
pub const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

const MAX_UNIT_NAME: usize = 255;
/// The kernel's IFNAMSIZ less the NUL.
const MAX_LINK_NAME: usize = 15;

fn bad(m: String) -> SystemError {
    SystemError::BadRequest(m)
}

/// Accept `NAME.TYPE`, `NAME@INSTANCE.TYPE` and templates `NAME@.TYPE`.
pub fn check_unit_name(name: &str) -> Result<()> {
    let shown = || name.chars().take(64).collect::<String>();
    if name.is_empty() || name.len() > MAX_UNIT_NAME {
        return Err(bad(format!(
            "invalid unit name {:?}: 1 to {MAX_UNIT_NAME} bytes",
            shown()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_.@-\\".contains(*c)))
    {
        return Err(bad(format!(
            "invalid unit name {:?}: character {c:?} is not allowed",
            shown()
        )));
    }
    let Some((prefix, suffix)) = name.rsplit_once('.') else {
        return Err(bad(format!(
            "invalid unit name {:?}: no type suffix (.service, .timer, ...)",
            shown()
        )));
    };
    if !UNIT_TYPES.contains(&suffix) {
        return Err(bad(format!(
            "invalid unit name {:?}: unknown unit type {suffix:?}",
            shown()
        )));
    }
    if prefix.is_empty() || prefix.starts_with('@') || prefix.matches('@').count() > 1 {
        return Err(bad(format!("invalid unit name {:?}", shown())));
    }
    Ok(())
}

/// Whether `name` is a template (`foo@.service`), which can be enabled
/// but not started.
pub fn is_template(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(p, _)| p.ends_with('@'))
}

/// A network interface name: 1 to 15 bytes of `[A-Za-z0-9_.-]`, not
/// starting with `-` or `.`.
pub fn check_link_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LINK_NAME
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "invalid link name {:?}: 1 to {MAX_LINK_NAME} characters of A-Z a-z 0-9 _ . -, not starting with - or .",
            name.chars().take(64).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        for ok in [
            "ssh.service",
            "-.mount",
            "getty@tty1.service",
            "getty@.service",
            "sys-devices-x\\x2dy.device",
            "multi-user.target",
        ] {
            check_unit_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "ssh",
            "../../etc/passwd",
            "/etc/passwd.service",
            "a b.service",
            "x.service\0",
            ".service",
            "@x.service",
            "a@b@c.service",
            "ssh.conf",
            "--now.service\n",
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_unit_name(&format!("{}.service", "a".repeat(250))).is_err());
        assert!(is_template("getty@.service"));
        assert!(!is_template("getty@tty1.service"));
    }

    #[test]
    fn link_names() {
        for ok in ["eth0", "enp0s3", "dummy0", "br-lan", "wlan0.100"] {
            check_link_name(ok).unwrap();
        }
        for bad in [
            "",
            "..",
            ".",
            "-x",
            "a/b",
            "eth 0",
            "averyverylongname",
            "x\0",
        ] {
            assert!(check_link_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
