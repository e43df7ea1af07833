//! Draws the events of `oxtree_host` transactions: messages on stdout
//! (stderr when stdout carries JSON), pull progress on stderr (a bar on a
//! terminal, one line otherwise).

use crate::output::format_size;
use indicatif::{ProgressBar, ProgressStyle};
use oxtree_host::{Cancel, Context, Event, Reporter};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// The cancel token SIGINT sets.
static CANCEL: OnceLock<Cancel> = OnceLock::new();

extern "C" fn on_sigint(_: libc::c_int) {
    if let Some(c) = CANCEL.get() {
        c.cancel();
    }
    // SAFETY: signal() is async-signal-safe; the next Ctrl-C kills.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

pub struct CliReporter {
    json: bool,
    tty: bool,
    pull: Mutex<Option<(String, ProgressBar)>>,
}

impl CliReporter {
    pub fn new(json: bool) -> CliReporter {
        CliReporter {
            json,
            tty: std::io::stderr().is_terminal(),
            pull: Mutex::new(None),
        }
    }

    fn say(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

impl Reporter for CliReporter {
    fn report(&self, e: Event) {
        match e {
            Event::Message { text } => self.say(&text),
            Event::Layering { text, .. } => self.say(&format!("{text}...")),
            Event::PullStarted { remote, refspec } => {
                let pb = if self.tty {
                    let pb = ProgressBar::new(0);
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30}] {pos}/{len} objects, {prefix}",
                        )
                        .unwrap()
                        .progress_chars("=> "),
                    );
                    pb.set_message(format!("Pulling {refspec} from {remote}"));
                    pb
                } else {
                    ProgressBar::hidden()
                };
                *self.pull.lock().unwrap() = Some((format!("{remote}:{refspec}"), pb));
            }
            Event::Pull(p) => {
                if let Some((_, pb)) = &*self.pull.lock().unwrap() {
                    pb.set_length(p.requested + p.scanned_local);
                    pb.set_position(p.fetched + p.scanned_local);
                    pb.set_prefix(format_size(p.bytes));
                }
            }
            Event::PullDone(p) => {
                if let Some((what, pb)) = self.pull.lock().unwrap().take() {
                    pb.finish_and_clear();
                    eprintln!(
                        "Pulled {what}: {} objects fetched ({}), {} found locally",
                        p.fetched,
                        format_size(p.bytes),
                        p.scanned_local
                    );
                }
            }
            _ => {}
        }
    }
}

/// The context of a CLI transaction: progress drawn here, the reboot
/// hook `$OXTREE_REBOOT_COMMAND` (run with `sh -c`; for tests) or
/// `systemctl reboot`.
///
/// The first Ctrl-C (SIGINT) cancels the transaction at its next check (a
/// pull stops between objects and moves no ref); a second one kills.
pub fn context(sysroot: &Path, run_dir: &Path, json: bool) -> Context {
    let cancel = CANCEL.get_or_init(Cancel::new).clone();
    // SAFETY: the handler only stores to an atomic and resets the
    // disposition, both async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let cx = Context::new(sysroot, run_dir)
        .with_reporter(Arc::new(CliReporter::new(json)))
        .with_cancel(cancel);
    match std::env::var("OXTREE_REBOOT_COMMAND") {
        Ok(c) if !c.is_empty() => cx.with_reboot(Arc::new(oxtree_host::CommandReboot(c))),
        _ => cx,
    }
}
