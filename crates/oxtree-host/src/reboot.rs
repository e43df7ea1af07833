//! The reboot hook a deploy with `reboot` asks after it succeeded.

use std::io;
use std::process::Command;

/// Reboots the machine (or whatever a test or an update policy wants).
pub trait Reboot: Send + Sync {
    fn reboot(&self) -> io::Result<()>;
}

/// `systemctl reboot`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemctlReboot;

impl Reboot for SystemctlReboot {
    fn reboot(&self) -> io::Result<()> {
        run(Command::new("systemctl").arg("reboot"), "systemctl reboot")
    }
}

/// A shell command, run with `sh -c` (the CLI's `OXTREE_REBOOT_COMMAND`).
#[derive(Clone, Debug)]
pub struct CommandReboot(pub String);

impl Reboot for CommandReboot {
    fn reboot(&self) -> io::Result<()> {
        run(Command::new("sh").arg("-c").arg(&self.0), &self.0)
    }
}

fn run(cmd: &mut Command, what: &str) -> io::Result<()> {
    let st = cmd.status()?;
    if st.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{what} failed ({st})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_reboot_runs_sh() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("rebooted");
        CommandReboot(format!("touch {}", f.display()))
            .reboot()
            .unwrap();
        assert!(f.exists());
        assert!(CommandReboot("exit 3".into()).reboot().is_err());
    }
}
